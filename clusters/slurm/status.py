"""Status of many jobs at once: the squeue and sacct argvs, their rows, and one merged `JobStatus` per id.

Owns squeue's and sacct's status formats, reading their rows, and the rule for merging the two (squeue
while a job lives, sacct once it is over). squeue has the live reason, sacct the exit code and the jobs
slurmctld has purged: both are asked, as two parts of one exec, and each part's result is read on its
own. Must never know Django, SSH or how the two parts reach the cluster.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import replace

from clusters.slurm.errors import StatusQueryFailed, stderr_excerpt
from clusters.slurm.fields import field_timestamp, field_value, split_row, squeue_elapsed_s
from clusters.slurm.identifiers import DERIVED_JOB_ID_PATTERN, MAX_JOB_IDS_PER_COMMAND, validate_job_ids
from clusters.slurm.states import JobStatus, PortalState, StatusSource, is_terminal, parse_state
from clusters.ssh import CommandResult

logger = logging.getLogger(__name__)

# %i id, %T state, %r reason, %S start, %e end, %M time used, %N node list.
SQUEUE_STATUS_FORMAT = "%i|%T|%r|%S|%e|%M|%N"
SQUEUE_STATUS_FIELD_COUNT = 7
SACCT_STATUS_FORMAT = "JobID,State,Reason,ExitCode,Start,End,ElapsedRaw,NodeList"
SACCT_STATUS_FIELD_COUNT = 8

# squeue `slurm_load_jobs error: Invalid job id specified` (exit 1) when a LONE id is unknown or purged
# (22.05); a list mixing such ids with live ones exits 0 and leaves them out. Either way: no rows.
SQUEUE_PURGED_ID_STDERR = "slurm_load_jobs error: Invalid job id specified"
SACCT_EXIT_CODE_PATTERN = re.compile(r"([0-9]+):([0-9]+)", re.ASCII)


def build_status_argvs(job_ids: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The squeue and sacct argvs for one status exec of at most MAX_JOB_IDS_PER_COMMAND ids.

    Raises ValueError on an id that is not digits, or on too many ids (use `chunk_job_ids`).
    """
    ids = validate_job_ids(job_ids)
    if len(ids) > MAX_JOB_IDS_PER_COMMAND:
        raise ValueError(f"{len(ids)} job ids in one command; chunk them by {MAX_JOB_IDS_PER_COMMAND}")
    jobs_option = "--jobs=" + ",".join(ids)
    return (
        ("squeue", "--noheader", "--states=all", "--format=" + SQUEUE_STATUS_FORMAT, jobs_option),
        ("sacct", "-X", "--parsable2", "--noheader", "--format=" + SACCT_STATUS_FORMAT, jobs_option),
    )


def parse_squeue_status_line(line: str) -> JobStatus | None:
    """One `squeue --format=SQUEUE_STATUS_FORMAT` row; None (and a warning) if it has the wrong shape."""
    fields = split_row(line, SQUEUE_STATUS_FIELD_COUNT, "squeue")
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
        reason=field_value(reason),
        exit_code=None,
        exit_signal=None,
        started_at=field_timestamp(start) if has_started else None,
        ended_at=field_timestamp(end) if is_terminal(parsed.state) else None,
        elapsed_s=squeue_elapsed_s(elapsed),
        node_list=field_value(node_list),
        source=StatusSource.SQUEUE,
    )


def parse_sacct_status_line(line: str) -> JobStatus | None:
    """One `sacct -X --parsable2 --format=SACCT_STATUS_FORMAT` row; None (and a warning) if misshapen."""
    fields = split_row(line, SACCT_STATUS_FIELD_COUNT, "sacct")
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
        reason=field_value(reason),
        exit_code=int(exit_match.group(1)) if exit_match else None,
        exit_signal=int(exit_match.group(2)) if exit_match else None,
        started_at=field_timestamp(start),
        ended_at=field_timestamp(end),
        elapsed_s=int(elapsed) if elapsed.isascii() and elapsed.isdigit() else None,
        node_list=field_value(node_list),
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


def check_squeue_result(squeue: CommandResult) -> None:
    """Accept squeue's answer, or its "no such id" refusal of a lone unknown id. Raises StatusQueryFailed."""
    stderr_lines = [line.strip() for line in squeue.stderr.splitlines() if line.strip()]
    is_purged_id_only = bool(stderr_lines) and set(stderr_lines) == {SQUEUE_PURGED_ID_STDERR}
    # Anything else means squeue failed, and a half answer would make live jobs look absent.
    if (stderr_lines or squeue.exit_code != 0) and not is_purged_id_only:
        raise StatusQueryFailed(
            "squeue failed", stderr_excerpt=stderr_excerpt(squeue.stderr), exit_code=squeue.exit_code
        )


def check_sacct_result(sacct: CommandResult) -> None:
    """Accept sacct's answer only if it exited 0 and said nothing on stderr. Raises StatusQueryFailed."""
    if sacct.exit_code != 0 or sacct.stderr.strip():
        raise StatusQueryFailed("sacct failed", stderr_excerpt=stderr_excerpt(sacct.stderr), exit_code=sacct.exit_code)


def parse_status_output(squeue: CommandResult, sacct: CommandResult, job_ids: Iterable[str]) -> dict[str, JobStatus]:
    """Statuses from the two results of `build_status_argvs`, keyed by the requested ids that SLURM knows.

    An id in neither output is left out (the caller decides when it is lost). Rows for ids that
    were not asked for are ignored: accounting also holds other users' and rejected jobs.
    Raises StatusQueryFailed when either output cannot be trusted.
    """
    wanted = frozenset(validate_job_ids(job_ids))
    check_squeue_result(squeue)
    check_sacct_result(sacct)
    live = _rows_by_id(squeue.stdout.splitlines(), parse_squeue_status_line, wanted)
    accounted = _rows_by_id(sacct.stdout.splitlines(), parse_sacct_status_line, wanted)
    statuses: dict[str, JobStatus] = {}
    for job_id in sorted(wanted, key=int):
        merged = _merge(live.get(job_id), accounted.get(job_id))
        if merged is not None:
            statuses[job_id] = merged
    return statuses
