"""What finished jobs used, as SLURM's accounting has it: the sacct argv and its rows.

Owns the usage format (`SACCT_USAGE_FORMAT`), reading `AllocTRES` (cpus, memory, nodes, GPUs) and the
strict reading of the rows: a row of the wrong shape fails the whole answer (`UnexpectedSlurmOutput`),
since a misread row would charge a member the wrong amount. Must never know Django, SSH, the
portal's rates or how the argv reaches the cluster.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from clusters.slurm.errors import UnexpectedSlurmOutput, UsageQueryFailed, stderr_excerpt
from clusters.slurm.fields import NOT_A_VALUE, field_value
from clusters.slurm.identifiers import DERIVED_JOB_ID_PATTERN, MAX_JOB_IDS_PER_COMMAND, validate_job_ids
from clusters.slurm.states import PortalState, is_terminal, parse_state
from clusters.ssh import CommandResult

logger = logging.getLogger(__name__)

SACCT_USAGE_FORMAT = "JobID,State,ElapsedRaw,CPUTimeRAW,AllocTRES,Start,End,Partition,Account"
SACCT_USAGE_FIELD_COUNT = 9
# AllocTRES items: `cpu=2`, `mem=200M`, `node=1`, `billing=2`, `gres/gpu=2`, `gres/gpu:a100=2`.
TRES_ITEM_PATTERN = re.compile(r"([a-z]+(?:/[A-Za-z0-9_:.-]+)?)=([0-9]+(?:\.[0-9]+)?)([KMGTP]?)", re.ASCII)
MEMORY_UNIT_MB = {
    "K": Decimal(1) / 1024,
    "": Decimal(1),
    "M": Decimal(1),
    "G": Decimal(1024),
    "T": Decimal(1024**2),
    "P": Decimal(1024**3),
}
TIME_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)


@dataclass(frozen=True)
class AllocatedTres:
    """What SLURM allocated to a job (`AllocTRES`); all zero for a job that never ran."""

    cpus: int = 0
    memory_mb: int = 0
    nodes: int = 0
    gpus: int = 0


@dataclass(frozen=True)
class JobUsageRecord:
    """One job's accounting row (`sacct -X`, the allocation only). Times are naive, the cluster's local time."""

    slurm_job_id: str
    state: PortalState
    state_verbatim: str
    elapsed_s: int
    cpu_time_s: int  # CPUTimeRAW: elapsed seconds times allocated cpus
    tres: AllocatedTres
    started_at: datetime | None
    ended_at: datetime | None
    partition: str
    account: str

    @property
    def is_terminal(self) -> bool:
        return is_terminal(self.state)


def build_usage_argv(job_ids: Iterable[str]) -> tuple[str, ...]:
    """The sacct argv for at most MAX_JOB_IDS_PER_COMMAND ids. Raises ValueError on a bad id or too many."""
    ids = validate_job_ids(job_ids)
    if len(ids) > MAX_JOB_IDS_PER_COMMAND:
        raise ValueError(f"{len(ids)} job ids in one command; chunk them by {MAX_JOB_IDS_PER_COMMAND}")
    return ("sacct", "-X", "--parsable2", "--noheader", "--format=" + SACCT_USAGE_FORMAT, "--jobs=" + ",".join(ids))


def parse_alloc_tres(text: str) -> AllocatedTres:
    """`billing=2,cpu=2,mem=200M,node=1[,gres/gpu=1]`; empty for a job never started. Raises UnexpectedSlurmOutput."""
    if not text.strip():
        return AllocatedTres()
    counts: dict[str, Decimal] = {}
    typed_gpus = 0
    for item in text.strip().split(","):
        match = TRES_ITEM_PATTERN.fullmatch(item)
        if match is None:
            raise UnexpectedSlurmOutput(f"unreadable AllocTRES item: {item[:80]!r}")
        name, number, unit = match.groups()
        if name == "mem":
            counts["mem"] = Decimal(number) * MEMORY_UNIT_MB[unit]
        elif unit or "." in number:
            raise UnexpectedSlurmOutput(f"a count with a unit in AllocTRES: {item[:80]!r}")
        elif name.startswith("gres/gpu:"):
            typed_gpus += int(number)  # a typed GPU count (`gres/gpu:a100=2`); SLURM also prints the total
        else:
            counts[name] = Decimal(number)
    gpus = int(counts["gres/gpu"]) if "gres/gpu" in counts else typed_gpus
    return AllocatedTres(
        cpus=int(counts.get("cpu", 0)),
        memory_mb=int(counts.get("mem", 0)),
        nodes=int(counts.get("node", 0)),
        gpus=gpus,
    )


def _seconds(field: str, name: str) -> int:
    if not (field.isascii() and field.isdigit()):
        raise UnexpectedSlurmOutput(f"{name} is not a number of seconds: {field[:40]!r}")
    return int(field)


def _time(field: str, name: str) -> datetime | None:
    if field.strip() in NOT_A_VALUE:
        return None
    if TIME_PATTERN.fullmatch(field) is None:
        raise UnexpectedSlurmOutput(f"{name} is not a time: {field[:40]!r}")
    try:
        return datetime.fromisoformat(field)
    except ValueError as exc:
        raise UnexpectedSlurmOutput(f"{name} is not a time: {field[:40]!r}") from exc


def parse_usage_line(line: str) -> JobUsageRecord:
    """One `sacct --format=SACCT_USAGE_FORMAT` row. Raises UnexpectedSlurmOutput when any field is misshapen."""
    fields = line.split("|")
    if len(fields) != SACCT_USAGE_FIELD_COUNT:
        raise UnexpectedSlurmOutput(f"a usage row with {len(fields)} fields: {line[:200]!r}")
    job_id, state_text, elapsed, cpu_time, tres, start, end, partition, account = fields
    if not job_id or not state_text.strip():
        raise UnexpectedSlurmOutput(f"a usage row without its id or state: {line[:200]!r}")
    parsed = parse_state(state_text)
    return JobUsageRecord(
        slurm_job_id=job_id,
        state=parsed.state,
        state_verbatim=parsed.verbatim,
        elapsed_s=_seconds(elapsed, "ElapsedRaw"),
        cpu_time_s=_seconds(cpu_time, "CPUTimeRAW"),
        tres=parse_alloc_tres(tres),
        started_at=_time(start, "Start"),
        ended_at=_time(end, "End"),
        partition=field_value(partition) or "",
        account=field_value(account) or "",
    )


def parse_usage_output(result: CommandResult, job_ids: Iterable[str]) -> dict[str, JobUsageRecord]:
    """The rows of `build_usage_argv`'s result for the requested ids that accounting knows.

    An id with no row is left out (purged from accounting, or never there: the caller decides). Rows of
    ids not asked for and array/het task rows are ignored. Raises UsageQueryFailed when sacct failed
    or complained, UnexpectedSlurmOutput when a row cannot be read.
    """
    wanted = frozenset(validate_job_ids(job_ids))
    if result.exit_code != 0 or result.stderr.strip():
        raise UsageQueryFailed("sacct failed", stderr_excerpt=stderr_excerpt(result.stderr), exit_code=result.exit_code)
    records: dict[str, JobUsageRecord] = {}
    for line in result.stdout.splitlines():
        if not line.strip():
            continue
        record = parse_usage_line(line)
        if record.slurm_job_id in wanted:
            records[record.slurm_job_id] = record  # a requeued job's records come oldest first: the last wins
        elif DERIVED_JOB_ID_PATTERN.fullmatch(record.slurm_job_id) is not None:
            logger.debug("slurm_skipped_derived_job_id: %s", record.slurm_job_id)
    return records
