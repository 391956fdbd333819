"""SLURM's job states, the one table mapping them to the portal's states, and `JobStatus`.

Owns every state name squeue/sacct print (22.05), what each means for the portal (an unknown one is
UNKNOWN plus a warning, never an error) and the frozen `JobStatus` the parsers return. Must never know
Django, models, SSH or how a status was fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

logger = logging.getLogger(__name__)


class SlurmState(StrEnum):
    """A job state as SLURM names it (base states and the flags squeue/sacct print instead)."""

    PENDING = "PENDING"
    CONFIGURING = "CONFIGURING"
    POWER_UP_NODE = "POWER_UP_NODE"
    RUNNING = "RUNNING"
    RESIZING = "RESIZING"
    SIGNALING = "SIGNALING"
    SUSPENDED = "SUSPENDED"
    STOPPED = "STOPPED"
    COMPLETING = "COMPLETING"
    STAGE_OUT = "STAGE_OUT"
    REQUEUED = "REQUEUED"
    REQUEUE_HOLD = "REQUEUE_HOLD"
    REQUEUE_FED = "REQUEUE_FED"
    RESV_DEL_HOLD = "RESV_DEL_HOLD"
    RECONFIG_FAIL = "RECONFIG_FAIL"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    DEADLINE = "DEADLINE"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    BOOT_FAIL = "BOOT_FAIL"
    PREEMPTED = "PREEMPTED"
    REVOKED = "REVOKED"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    UNKNOWN = "UNKNOWN"  # not SLURM's: a state this table does not know


class PortalState(StrEnum):
    """The portal-side state a SLURM state means (docs: DESIGN.md "Job states")."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETING = "COMPLETING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    UNKNOWN = "UNKNOWN"


# The one table. Not yet started or sent back to the queue -> PENDING; started and holding its
# allocation (even when suspended, stopped or signalled) -> RUNNING; the job script is over but
# SLURM is still cleaning up or staging out -> COMPLETING.
SLURM_TO_PORTAL_STATE: Mapping[SlurmState, PortalState] = {
    SlurmState.PENDING: PortalState.PENDING,
    SlurmState.CONFIGURING: PortalState.PENDING,
    SlurmState.POWER_UP_NODE: PortalState.PENDING,
    SlurmState.REQUEUED: PortalState.PENDING,
    SlurmState.REQUEUE_HOLD: PortalState.PENDING,
    SlurmState.REQUEUE_FED: PortalState.PENDING,
    SlurmState.RESV_DEL_HOLD: PortalState.PENDING,
    SlurmState.RECONFIG_FAIL: PortalState.PENDING,  # a requeue flag: the job goes back to the queue
    SlurmState.RUNNING: PortalState.RUNNING,
    SlurmState.RESIZING: PortalState.RUNNING,
    SlurmState.SIGNALING: PortalState.RUNNING,
    SlurmState.SUSPENDED: PortalState.RUNNING,
    SlurmState.STOPPED: PortalState.RUNNING,
    SlurmState.COMPLETING: PortalState.COMPLETING,
    SlurmState.STAGE_OUT: PortalState.COMPLETING,
    SlurmState.COMPLETED: PortalState.COMPLETED,
    SlurmState.FAILED: PortalState.FAILED,
    SlurmState.SPECIAL_EXIT: PortalState.FAILED,
    SlurmState.CANCELLED: PortalState.CANCELLED,
    SlurmState.REVOKED: PortalState.CANCELLED,  # a federation sibling started elsewhere
    SlurmState.TIMEOUT: PortalState.TIMEOUT,
    SlurmState.DEADLINE: PortalState.TIMEOUT,
    SlurmState.OUT_OF_MEMORY: PortalState.OUT_OF_MEMORY,
    SlurmState.NODE_FAIL: PortalState.NODE_FAIL,
    SlurmState.BOOT_FAIL: PortalState.NODE_FAIL,
    SlurmState.PREEMPTED: PortalState.PREEMPTED,
    SlurmState.UNKNOWN: PortalState.UNKNOWN,
}

TERMINAL_PORTAL_STATES = frozenset(
    {
        PortalState.COMPLETED,
        PortalState.FAILED,
        PortalState.CANCELLED,
        PortalState.TIMEOUT,
        PortalState.OUT_OF_MEMORY,
        PortalState.NODE_FAIL,
        PortalState.PREEMPTED,
    }
)

# Pending reasons a job never gets past on its own: sbatch accepted it all the same (22.05 without
# EnforcePartLimits or AccountingStorageEnforce, recorded in tests/fixtures/slurm/22.05).
UNSATISFIABLE_PENDING_REASONS = frozenset(
    {
        "BadConstraints",
        "DependencyNeverSatisfied",
        "InvalidAccount",
        "InvalidQOS",
        "PartitionConfig",
        "PartitionNodeLimit",
        "PartitionTimeLimit",
    }
)


def is_terminal(state: PortalState) -> bool:
    """True when SLURM will not run the job again."""
    return state in TERMINAL_PORTAL_STATES


@dataclass(frozen=True)
class ParsedState:
    slurm_state: SlurmState
    state: PortalState
    verbatim: str  # exactly as printed, e.g. "CANCELLED by 1001"


def parse_state(text: str) -> ParsedState:
    """Map a state as squeue/sacct print it; an unknown one is UNKNOWN plus a warning, never an error."""
    verbatim = text.strip()
    # sacct appends the canceller's uid ("CANCELLED by 1001"); fixed-width output appends "+".
    token = verbatim.split(" ", 1)[0].rstrip("+")
    try:
        slurm_state = SlurmState(token)
    except ValueError:
        slurm_state = SlurmState.UNKNOWN
    if slurm_state is SlurmState.UNKNOWN:
        logger.warning("slurm_unknown_state: %r", verbatim)
    return ParsedState(slurm_state=slurm_state, state=SLURM_TO_PORTAL_STATE[slurm_state], verbatim=verbatim)


class StatusSource(StrEnum):
    SQUEUE = "squeue"
    SACCT = "sacct"


@dataclass(frozen=True)
class JobStatus:
    """One job as SLURM reports it; `reason` is None when SLURM says "None"."""

    slurm_job_id: str
    slurm_state: SlurmState
    state: PortalState
    state_verbatim: str
    reason: str | None
    exit_code: int | None
    exit_signal: int | None
    started_at: datetime | None
    ended_at: datetime | None
    elapsed_s: int | None
    node_list: str | None
    source: StatusSource

    @property
    def is_terminal(self) -> bool:
        return is_terminal(self.state)

    @property
    def will_never_start(self) -> bool:
        """Pending for a reason SLURM never gets past (e.g. over the partition's MaxTime)."""
        return self.state is PortalState.PENDING and self.reason in UNSATISFIABLE_PENDING_REASONS
