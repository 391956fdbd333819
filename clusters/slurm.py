"""The SLURM adapter: argv builders, output parsers, the one state table, and a thin client.

Owns what SLURM's command-line tools (22.05) take and print: `sbatch --parsable`, the delimited
`squeue`/`sacct` formats, `scancel`, the job states and sbatch's refusal texts. It speaks only
frozen dataclasses, enums and plain exceptions.

Must never know Django, models, the portal's users, SSH or how an argv reaches the cluster: the
client is handed `run` and `run_sequence` callables (the transport's) and gets `CommandResult`s back.
Every value it puts in an argv is validated first (job ids are ASCII digits, names and options pass
allow-lists), and it never writes shell text.

Times SLURM prints carry no zone: `started_at`/`ended_at` are naive datetimes in the cluster's
local time, as `squeue`/`sacct` print them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from clusters.transport import CommandResult

logger = logging.getLogger(__name__)

# `run(argv, timeout_s)`: one argv, one remote exec (the transport's `run`).
RunCommand = Callable[[Sequence[str], float], CommandResult]
# `run_sequence(argvs, timeout_s)`: several argvs in ONE remote exec; see `SlurmClient`.
RunSequence = Callable[[Sequence[Sequence[str]], float], CommandResult]

# One squeue + one sacct for up to 1000 ids (≈ 8 KB of argv): sacct's cost is mostly per call
# (≈ 55 ms for 200 ids, ≈ 65 ms for 500 on the local cluster), so fewer, larger calls win.
MAX_JOB_IDS_PER_COMMAND = 1000
STDERR_EXCERPT_MAX_CHARS = 2000

# Printed by `echo` (its own argv) between squeue's and sacct's output. Neither tool prints a line
# that starts with "-": every squeue/sacct row starts with a job id.
SACCT_FOLLOWS_MARKER = "--np-sacct-follows--"

# %i id, %T state, %r reason, %S start, %e end, %M time used, %N node list.
SQUEUE_STATUS_FORMAT = "%i|%T|%r|%S|%e|%M|%N"
SQUEUE_STATUS_FIELD_COUNT = 7
SACCT_STATUS_FORMAT = "JobID,State,Reason,ExitCode,Start,End,ElapsedRaw,NodeList"
SACCT_STATUS_FIELD_COUNT = 8
FIND_BY_NAME_LOOKBACK = "now-7days"

# squeue `slurm_load_jobs error: Invalid job id specified` (exit 1) when a LONE id is unknown or purged
# (22.05); a list mixing such ids with live ones exits 0 and leaves them out. Either way: no rows.
SQUEUE_PURGED_ID_STDERR = "slurm_load_jobs error: Invalid job id specified"

JOB_ID_PATTERN = re.compile(r"[0-9]{1,12}", re.ASCII)
# sacct/squeue rows for array tasks (`58_1`, `58_[0-2]`) and het components (`59+0`).
DERIVED_JOB_ID_PATTERN = re.compile(r"([0-9]{1,12})[_+].*", re.ASCII)
JOB_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)
# sbatch options the portal may pass on the command line, as `--name` or `--name=value`.
SBATCH_OPTION_NAMES = frozenset(
    {
        "account",
        "chdir",
        "comment",
        "cpus-per-task",
        "error",
        "gres",
        "hold",
        "mem",
        "mem-per-cpu",
        "nodes",
        "ntasks",
        "ntasks-per-node",
        "output",
        "partition",
        "qos",
        "time",
    }
)
SBATCH_OPTION_PATTERN = re.compile(r"--([a-z][a-z-]*)(?:=([A-Za-z0-9_.,:/@%+=-]+))?", re.ASCII)
SQUEUE_ELAPSED_PATTERN = re.compile(r"(?:([0-9]+)-)?(?:([0-9]+):)?([0-9]+):([0-9]+)", re.ASCII)
SACCT_EXIT_CODE_PATTERN = re.compile(r"([0-9]+):([0-9]+)", re.ASCII)
SBATCH_PARSABLE_PATTERN = re.compile(r"([0-9]{1,12})(?:;[A-Za-z0-9_.-]+)?", re.ASCII)
NOT_A_VALUE = frozenset({"", "N/A", "None", "None assigned", "Unknown", "INVALID"})


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


class SlurmError(Exception):
    """A SLURM command refused or printed what this adapter cannot read; `code` is stable."""

    code = "SLURM_ERROR"


class UnexpectedSlurmOutput(SlurmError):
    code = "SLURM_UNEXPECTED_OUTPUT"


class SlurmCommandFailed(SlurmError):
    """A SLURM command exited non-zero or complained; keeps a trimmed stderr for the logs."""

    def __init__(self, message: str, *, stderr_excerpt: str, exit_code: int) -> None:
        super().__init__(message)
        self.stderr_excerpt = stderr_excerpt
        self.exit_code = exit_code


class StatusQueryFailed(SlurmCommandFailed):
    code = "SLURM_STATUS_QUERY_FAILED"


class ScancelFailed(SlurmCommandFailed):
    code = "SLURM_SCANCEL_FAILED"


class SbatchErrorCode(StrEnum):
    INVALID_PARTITION = "INVALID_PARTITION"
    NODE_CONFIG_UNAVAILABLE = "NODE_CONFIG_UNAVAILABLE"
    TIME_LIMIT = "TIME_LIMIT"
    QOS = "QOS"
    ACCOUNT = "ACCOUNT"
    GRES = "GRES"
    INVALID_OPTION = "INVALID_OPTION"
    SCRIPT_NOT_FOUND = "SCRIPT_NOT_FOUND"
    CONTROLLER_UNAVAILABLE = "CONTROLLER_UNAVAILABLE"
    GENERIC = "GENERIC"


@dataclass(frozen=True)
class SbatchError:
    """Why sbatch refused: `message` is for the member, `stderr_excerpt` for the logs only."""

    code: SbatchErrorCode
    message: str
    stderr_excerpt: str
    exit_code: int

    @property
    def is_transient(self) -> bool:
        return self.code is SbatchErrorCode.CONTROLLER_UNAVAILABLE


class SbatchRejected(SlurmError):
    code = "SLURM_SBATCH_REJECTED"

    def __init__(self, error: SbatchError) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


# Lower-case fragments of sbatch's stderr, first match wins. Recorded texts are in
# tests/fixtures/slurm/22.05/sbatch_err_*.txt; the ones this cluster cannot provoke (it enforces no
# partition, QOS or account limit at submission) are SLURM's own error strings (slurm_errno.c).
SBATCH_ERROR_RULES: tuple[tuple[SbatchErrorCode, tuple[str, ...], str], ...] = (
    (
        SbatchErrorCode.INVALID_PARTITION,
        ("invalid partition",),
        "The cluster does not know the requested partition. Choose a partition from the cluster's list.",
    ),
    (
        SbatchErrorCode.TIME_LIMIT,
        ("requested time limit is invalid", "invalid --time specification"),
        "The requested run time is invalid or longer than the partition allows. "
        "Lower the walltime or choose a partition with a longer limit.",
    ),
    (
        SbatchErrorCode.NODE_CONFIG_UNAVAILABLE,
        (
            "requested node configuration is not available",
            "memory specification can not be satisfied",
            "more processors requested than permitted",
            "node count specification invalid",
        ),
        "No node of the cluster has that much memory or that many CPUs or nodes. "
        "Request fewer resources, or a partition with larger nodes.",
    ),
    (
        SbatchErrorCode.QOS,
        ("invalid qos", "job violates accounting/qos policy"),
        "The job exceeds what your quality of service (QOS) allows. Request fewer resources or another QOS.",
    ),
    (
        SbatchErrorCode.ACCOUNT,
        ("invalid account",),
        "Your cluster account may not submit to this partition. Check the account set in your cluster profile.",
    ),
    (
        SbatchErrorCode.GRES,
        ("invalid generic resource",),
        "The cluster does not offer the requested generic resource (e.g. GPUs). Remove it or choose another partition.",
    ),
    (
        SbatchErrorCode.INVALID_OPTION,
        ("unrecognized option", "invalid option"),
        "The cluster's scheduler does not accept one of the job's options. Ask a lab admin to check the recipe.",
    ),
    (
        SbatchErrorCode.SCRIPT_NOT_FOUND,
        ("unable to open file",),
        "The batch script was not found on the cluster. Upload the job's files again, then resubmit.",
    ),
    (
        SbatchErrorCode.CONTROLLER_UNAVAILABLE,
        ("unable to contact slurm controller", "socket timed out", "temporarily unable to accept job"),
        "The cluster's scheduler did not answer. The portal will try again; nothing needs changing.",
    ),
)
SBATCH_GENERIC_MESSAGE = "The cluster refused the job. A lab admin can find the scheduler's answer in the logs."


def stderr_excerpt(stderr: str) -> str:
    """Stderr trimmed for a log line: stripped and capped."""
    return stderr.strip()[:STDERR_EXCERPT_MAX_CHARS]


def validate_job_id(job_id: str) -> str:
    """Return the id if it is ASCII digits only; raises ValueError otherwise."""
    if not isinstance(job_id, str) or JOB_ID_PATTERN.fullmatch(job_id) is None:
        raise ValueError(f"not a SLURM job id: {job_id!r}")
    return job_id


def validate_job_ids(job_ids: Iterable[str]) -> tuple[str, ...]:
    """Validated ids, duplicates dropped, order kept; raises ValueError on a bad or missing id."""
    unique = tuple(dict.fromkeys(validate_job_id(job_id) for job_id in job_ids))
    if not unique:
        raise ValueError("no job ids")
    return unique


def validate_job_name(name: str) -> str:
    """Return the name if it passes the allow-list; raises ValueError otherwise."""
    if not isinstance(name, str) or JOB_NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(f"not an allowed SLURM job name: {name!r}")
    return name


def chunk_job_ids(job_ids: Iterable[str], size: int = MAX_JOB_IDS_PER_COMMAND) -> list[tuple[str, ...]]:
    """Validated, deduplicated ids in chunks of at most `size`, one status command each."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    unique = validate_job_ids(job_ids)
    return [unique[start : start + size] for start in range(0, len(unique), size)]


# ---------------------------------------------------------------- sbatch


def build_sbatch_argv(script_path: str, *, job_name: str | None = None, extra_args: Sequence[str] = ()) -> list[str]:
    """`sbatch --parsable [--job-name=NAME] [OPTIONS] -- SCRIPT`; raises ValueError on a refused value."""
    if not script_path or "\0" in script_path or "\n" in script_path:
        raise ValueError("script path must be non-empty, without NUL or newline")
    argv = ["sbatch", "--parsable"]
    if job_name is not None:
        argv.append("--job-name=" + validate_job_name(job_name))
    for arg in extra_args:
        match = SBATCH_OPTION_PATTERN.fullmatch(arg)
        if match is None or match.group(1) not in SBATCH_OPTION_NAMES:
            raise ValueError(f"sbatch option not allowed: {arg!r}")
        argv.append(arg)
    argv += ["--", script_path]
    return argv


def parse_sbatch_output(stdout: str) -> str:
    """The job id from `sbatch --parsable` ("12345" or "12345;cluster"); raises UnexpectedSlurmOutput."""
    match = SBATCH_PARSABLE_PATTERN.fullmatch(stdout.strip())
    if match is None:
        raise UnexpectedSlurmOutput(f"sbatch --parsable printed no job id ({len(stdout)} chars)")
    return match.group(1)


def classify_sbatch_error(stderr: str, exit_code: int) -> SbatchError:
    """What a refusing sbatch meant, with a message for the member."""
    lowered = stderr.lower()
    for code, fragments, message in SBATCH_ERROR_RULES:
        if any(fragment in lowered for fragment in fragments):
            return SbatchError(code=code, message=message, stderr_excerpt=stderr_excerpt(stderr), exit_code=exit_code)
    return SbatchError(
        code=SbatchErrorCode.GENERIC,
        message=SBATCH_GENERIC_MESSAGE,
        stderr_excerpt=stderr_excerpt(stderr),
        exit_code=exit_code,
    )


# ---------------------------------------------------------------- status


def build_status_argvs(job_ids: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """The squeue, marker and sacct argvs for one status exec of at most MAX_JOB_IDS_PER_COMMAND ids.

    Raises ValueError on an id that is not digits, or on too many ids (use `chunk_job_ids`).
    """
    ids = validate_job_ids(job_ids)
    if len(ids) > MAX_JOB_IDS_PER_COMMAND:
        raise ValueError(f"{len(ids)} job ids in one command; chunk them by {MAX_JOB_IDS_PER_COMMAND}")
    jobs_option = "--jobs=" + ",".join(ids)
    return (
        ("squeue", "--noheader", "--states=all", "--format=" + SQUEUE_STATUS_FORMAT, jobs_option),
        ("echo", SACCT_FOLLOWS_MARKER),
        ("sacct", "-X", "--parsable2", "--noheader", "--format=" + SACCT_STATUS_FORMAT, jobs_option),
    )


def _value(field: str) -> str | None:
    return None if field.strip() in NOT_A_VALUE else field.strip()


def _timestamp(field: str) -> datetime | None:
    value = _value(field)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _squeue_elapsed_s(field: str) -> int | None:
    """squeue's %M: "M:SS", "H:MM:SS" or "D-HH:MM:SS"."""
    match = SQUEUE_ELAPSED_PATTERN.fullmatch(field.strip())
    if match is None:
        return None
    days, hours, minutes, seconds = (int(group) if group else 0 for group in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _split_row(line: str, field_count: int, tool: str) -> list[str] | None:
    fields = line.split("|")
    if len(fields) != field_count:
        logger.warning("slurm_unreadable_row: %s %r", tool, line[:200])
        return None
    return fields


def parse_squeue_status_line(line: str) -> JobStatus | None:
    """One `squeue --format=SQUEUE_STATUS_FORMAT` row; None (and a warning) if it has the wrong shape."""
    fields = _split_row(line, SQUEUE_STATUS_FIELD_COUNT, "squeue")
    if fields is None:
        return None
    job_id, state_text, reason, start, end, elapsed, node_list = fields
    parsed = parse_state(state_text)
    # For a pending job %S is the backfill's forecast and for a live one %e is start + time limit:
    # only times that already happened are kept.
    has_started = parsed.state not in (PortalState.PENDING, PortalState.UNKNOWN)
    return JobStatus(
        slurm_job_id=job_id.strip(),
        slurm_state=parsed.slurm_state,
        state=parsed.state,
        state_verbatim=parsed.verbatim,
        reason=_value(reason),
        exit_code=None,
        exit_signal=None,
        started_at=_timestamp(start) if has_started else None,
        ended_at=_timestamp(end) if is_terminal(parsed.state) else None,
        elapsed_s=_squeue_elapsed_s(elapsed),
        node_list=_value(node_list),
        source=StatusSource.SQUEUE,
    )


def parse_sacct_status_line(line: str) -> JobStatus | None:
    """One `sacct -X --parsable2 --format=SACCT_STATUS_FORMAT` row; None (and a warning) if misshapen."""
    fields = _split_row(line, SACCT_STATUS_FIELD_COUNT, "sacct")
    if fields is None:
        return None
    job_id, state_text, reason, exit_code_text, start, end, elapsed_raw, node_list = fields
    parsed = parse_state(state_text)
    exit_match = SACCT_EXIT_CODE_PATTERN.fullmatch(exit_code_text.strip())
    elapsed = elapsed_raw.strip()
    return JobStatus(
        slurm_job_id=job_id.strip(),
        slurm_state=parsed.slurm_state,
        state=parsed.state,
        state_verbatim=parsed.verbatim,
        reason=_value(reason),
        exit_code=int(exit_match.group(1)) if exit_match else None,
        exit_signal=int(exit_match.group(2)) if exit_match else None,
        started_at=_timestamp(start),
        ended_at=_timestamp(end),
        elapsed_s=int(elapsed) if elapsed.isascii() and elapsed.isdigit() else None,
        node_list=_value(node_list),
        source=StatusSource.SACCT,
    )


def _rows_by_id(
    lines: Iterable[str], parse_line: Callable[[str], JobStatus | None], wanted: frozenset[str]
) -> dict[str, JobStatus]:
    rows: dict[str, JobStatus] = {}
    for line in lines:
        if not line.strip():
            continue
        status = parse_line(line)
        if status is None:
            continue
        if status.slurm_job_id in wanted:
            rows[status.slurm_job_id] = status  # sacct lists a requeued job's records oldest first
        elif DERIVED_JOB_ID_PATTERN.fullmatch(status.slurm_job_id) is not None:
            # The portal submits neither arrays nor het jobs: their task rows are skipped.
            logger.debug("slurm_skipped_derived_job_id: %s", status.slurm_job_id)
    return rows


def _merge(live: JobStatus | None, accounted: JobStatus | None) -> JobStatus | None:
    """squeue while the job lives (its reason is current); sacct once both say it is over (exit code)."""
    if accounted is not None and accounted.is_terminal and (live is None or live.is_terminal):
        if accounted.reason is None and live is not None and live.reason is not None:
            # squeue knows why a job ended (TimeLimit, NonZeroExitCode); sacct -X prints "None".
            return replace(accounted, reason=live.reason)
        return accounted
    return live if live is not None else accounted


def parse_status_output(result: CommandResult, job_ids: Iterable[str]) -> dict[str, JobStatus]:
    """Statuses from the output of `build_status_argvs`, keyed by the requested ids that SLURM knows.

    An id in neither output is left out (the caller decides when it is lost). Rows for ids that
    were not asked for are ignored: accounting also holds other users' and rejected jobs.
    Raises StatusQueryFailed when the output cannot be trusted.
    """
    wanted = frozenset(validate_job_ids(job_ids))
    # The two commands' stderr arrive interleaved and cannot be told apart: anything but squeue's
    # "no such id" means one of them failed, and a half answer would make live jobs look absent.
    unexpected_stderr = [
        line for line in result.stderr.splitlines() if line.strip() and line.strip() != SQUEUE_PURGED_ID_STDERR
    ]
    if result.exit_code != 0 or unexpected_stderr:
        raise StatusQueryFailed(
            "squeue/sacct failed", stderr_excerpt=stderr_excerpt(result.stderr), exit_code=result.exit_code
        )
    lines = result.stdout.splitlines()
    if lines.count(SACCT_FOLLOWS_MARKER) != 1:
        raise StatusQueryFailed(
            "status output lacks its squeue/sacct marker", stderr_excerpt="", exit_code=result.exit_code
        )
    marker_index = lines.index(SACCT_FOLLOWS_MARKER)
    live = _rows_by_id(lines[:marker_index], parse_squeue_status_line, wanted)
    accounted = _rows_by_id(lines[marker_index + 1 :], parse_sacct_status_line, wanted)
    statuses: dict[str, JobStatus] = {}
    for job_id in sorted(wanted, key=int):
        merged = _merge(live.get(job_id), accounted.get(job_id))
        if merged is not None:
            statuses[job_id] = merged
    return statuses


# ---------------------------------------------------------------- scancel and lookup by name


def build_scancel_argv(*job_ids: str) -> list[str]:
    """`scancel -- ID...` (many jobs in one call); raises ValueError on no id or an id that is not digits."""
    if not job_ids:
        raise ValueError("scancel needs at least one job id")
    return ["scancel", "--", *(validate_job_id(job_id) for job_id in job_ids)]


def build_find_by_name_argvs(name: str) -> tuple[tuple[str, ...], ...]:
    """squeue (own jobs still known to slurmctld), marker, sacct (the last 7 days) for one job name.

    Both are asked: a job that ended a moment ago is listed by sacct under the placeholder name
    "allocation" for about 2 s (22.05), while squeue still has its name for MinJobAge.
    Raises ValueError on a name outside the allow-list.
    """
    name_option = "--name=" + validate_job_name(name)
    return (
        ("squeue", "--me", "--noheader", "--states=all", name_option, "--format=%i|%j"),
        ("echo", SACCT_FOLLOWS_MARKER),
        (
            "sacct",
            "-X",
            "--parsable2",
            "--noheader",
            name_option,
            "--starttime=" + FIND_BY_NAME_LOOKBACK,
            "--format=JobID,JobName,State",
        ),
    )


def parse_find_by_name_output(stdout: str, name: str) -> list[str]:
    """Ids of the jobs named exactly `name`, ascending; a het/array row counts as its base id."""
    found: set[str] = set()
    for line in stdout.splitlines():
        fields = line.split("|")
        if line == SACCT_FOLLOWS_MARKER or len(fields) < 2 or fields[1] != name:
            continue
        job_id = fields[0].strip()
        derived = DERIVED_JOB_ID_PATTERN.fullmatch(job_id)
        if derived is not None:
            job_id = derived.group(1)
        if JOB_ID_PATTERN.fullmatch(job_id) is not None:
            found.add(job_id)
    return sorted(found, key=int)


# ---------------------------------------------------------------- client


def joined_result(parts: Sequence[CommandResult]) -> CommandResult:
    """One result from a transport's per-part sequence results: the shape `parse_status_output` reads."""
    return CommandResult(
        argv=tuple(arg for part in parts for arg in part.argv),
        exit_code=parts[-1].exit_code,
        stdout="".join(part.stdout for part in parts),
        stderr="".join(part.stderr for part in parts),
        duration_s=max(part.duration_s for part in parts),
    )


class SlurmClient:
    """sbatch, status, scancel and lookup by name for one member on one cluster.

    Contract of `run_sequence(argvs, timeout_s) -> CommandResult`: the argvs run in order within ONE
    remote exec; the transport joins each with `shlex.join` and the results with " ; " (fixed text,
    the only shell syntax), so every argv runs whatever the previous one's exit status; the result
    holds the concatenated stdout and stderr and the LAST argv's exit code. No value is ever pasted
    into shell text, no `sh -c` is involved, and a marker printed by `echo` (its own argv) splits the
    output deterministically. Two commands in one exec keep the status sync at one round trip per
    (member, cluster) and chunk of ids: squeue has the live reason, sacct the exit code and jobs
    slurmctld has purged.
    """

    def __init__(self, *, run: RunCommand, run_sequence: RunSequence, command_timeout_s: float = 30.0) -> None:
        self._run = run
        self._run_sequence = run_sequence
        self._command_timeout_s = command_timeout_s

    def submit(self, script_path: str, job_name: str, *, extra_args: Sequence[str] = ()) -> str:
        """Submit a batch script; returns the job id. Raises SbatchRejected, UnexpectedSlurmOutput."""
        argv = build_sbatch_argv(script_path, job_name=job_name, extra_args=extra_args)
        result = self._run(argv, self._command_timeout_s)
        if result.exit_code != 0:
            raise SbatchRejected(classify_sbatch_error(result.stderr, result.exit_code))
        return parse_sbatch_output(result.stdout)

    def statuses(self, job_ids: Iterable[str]) -> dict[str, JobStatus]:
        """Statuses of the ids SLURM knows, one exec per chunk of ids. Raises StatusQueryFailed."""
        ids = tuple(job_ids)
        if not ids:
            return {}
        statuses: dict[str, JobStatus] = {}
        for chunk in chunk_job_ids(ids):
            result = self._run_sequence(build_status_argvs(chunk), self._command_timeout_s)
            statuses.update(parse_status_output(result, chunk))
        return statuses

    def cancel(self, *job_ids: str) -> None:
        """Cancel jobs in one scancel; an id SLURM no longer knows is no error (22.05 exits 0). Raises ScancelFailed."""
        result = self._run(build_scancel_argv(*job_ids), self._command_timeout_s)
        if result.exit_code != 0:
            raise ScancelFailed(
                "scancel refused", stderr_excerpt=stderr_excerpt(result.stderr), exit_code=result.exit_code
            )

    def find_by_name(self, name: str) -> list[str]:
        """Ids of this member's jobs named `name` (the submit tag). Raises StatusQueryFailed."""
        result = self._run_sequence(build_find_by_name_argvs(name), self._command_timeout_s)
        if result.exit_code != 0 or result.stderr.strip():
            raise StatusQueryFailed(
                "squeue/sacct lookup by name failed",
                stderr_excerpt=stderr_excerpt(result.stderr),
                exit_code=result.exit_code,
            )
        return parse_find_by_name_output(result.stdout, name)


# ------------------------------------------------------------------ partitions (admin's discovery)

PARTITION_INFO_FORMAT = "%P|%c|%m|%G|%l|%D"
GPU_GRES_PATTERN = re.compile(r"(?:^|,)gpu(?::[A-Za-z0-9_.-]+)?:(\d+)")


@dataclass(frozen=True)
class PartitionInfo:
    name: str
    is_default: bool
    cores_per_node: int
    memory_per_node_mb: int | None
    gpus_per_node: int
    max_walltime_s: int | None  # None: no limit
    node_count: int


def build_partition_info_argv() -> list[str]:
    return ["sinfo", "--noheader", f"--format={PARTITION_INFO_FORMAT}"]


def _time_limit_s(field: str) -> int | None:
    """sinfo's %l: "infinite"/"UNLIMITED" (no limit) or SLURM's [D-]H:MM:SS / M:SS."""
    if field.strip().lower() in {"infinite", "unlimited", "n/a"}:
        return None
    return _squeue_elapsed_s(field)


def parse_partition_info(stdout: str) -> list[PartitionInfo]:
    """One PartitionInfo per partition; rows of unlike nodes merge conservatively (least memory)."""
    merged: dict[str, PartitionInfo] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        fields = _split_row(line, 6, "sinfo")
        if fields is None:
            continue
        name, cores, memory, gres, limit, nodes = fields
        gpus = sum(int(count) for count in GPU_GRES_PATTERN.findall(gres))
        info = PartitionInfo(
            name=name.rstrip("*"),
            is_default=name.endswith("*"),
            cores_per_node=int(cores.rstrip("+")) if cores.rstrip("+").isdigit() else 1,
            memory_per_node_mb=int(memory.rstrip("+")) if memory.rstrip("+").isdigit() else None,
            gpus_per_node=gpus,
            max_walltime_s=_time_limit_s(limit),
            node_count=int(nodes) if nodes.isdigit() else 0,
        )
        earlier = merged.get(info.name)
        if earlier is not None:
            memories = [m for m in (earlier.memory_per_node_mb, info.memory_per_node_mb) if m is not None]
            info = replace(
                info,
                cores_per_node=max(earlier.cores_per_node, info.cores_per_node),
                memory_per_node_mb=min(memories) if memories else None,
                gpus_per_node=max(earlier.gpus_per_node, info.gpus_per_node),
                node_count=earlier.node_count + info.node_count,
            )
        merged[info.name] = info
    return list(merged.values())
