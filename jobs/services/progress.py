"""A running job's NAMD progress: only the new bytes of its log read, fed to the log parser, stalls noticed.

The parser's state (`jobs.namd_log.LogProgress`) and the log's tail live in the job's JobProgress
row, with the byte offset read so far; each read asks for what follows it, at most a few MiB.
A job whose log stops getting TIMING lines for STALL_FACTOR times its usual gap is marked stalled,
and resumed when they come back.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction

from clusters.gateway import MemberSession
from jobs import remote
from jobs.models import Job, JobProgress
from jobs.namd_log import LogProgress
from jobs.transitions import note
from notifications import job_events
from portal.errors import PortalError

logger = logging.getLogger(__name__)

STALL_FACTOR = 5  # no new TIMING line for 5x the usual gap (or sync interval): stalled
MAX_LOG_BYTES_PER_SYNC = 2 * 1024 * 1024
MAX_LOG_BYTES_AT_FINISH = 16 * 1024 * 1024
LOG_READS_PER_EXEC = 200


def feed_log(progress: JobProgress, chunk: str, now: datetime, interval_s: int) -> str:
    """Feed new log bytes into the progress row (unsaved); returns "STALLED", "RESUMED" or ""."""
    log = LogProgress.from_state(progress.log_state) if progress.log_state else LogProgress()
    timing_before = log.timing_lines
    data = chunk.encode("utf-8", errors="surrogateescape")
    log.feed(data)
    progress.log_state = log.to_state()
    progress.log_tail = remote.tail(progress.log_tail + chunk)
    new_lines = log.timing_lines - timing_before
    if new_lines > 0:
        if progress.last_timing_at is not None and timing_before > 0:
            progress.timing_interval_s = (now - progress.last_timing_at).total_seconds() / new_lines
        progress.last_timing_at = now
        was_stalled, progress.stalled_at = progress.stalled_at is not None, None
        return "RESUMED" if was_stalled else ""
    if progress.last_timing_at is None or progress.stalled_at is not None or log.has_finished:
        return ""
    gap = max(progress.timing_interval_s or 0.0, float(interval_s))
    if (now - progress.last_timing_at).total_seconds() > STALL_FACTOR * gap:
        progress.stalled_at = now
        return "STALLED"
    return ""


def refresh_progress(
    session: MemberSession, jobs: list[Job], now: datetime, *, max_bytes: int = MAX_LOG_BYTES_PER_SYNC
) -> None:
    """Read only the new bytes of each running job's NAMD log (one exec per 200 jobs) and update progress."""
    progresses = {p.job_id: p for p in JobProgress.objects.filter(job__in=jobs)}
    for start in range(0, len(jobs), LOG_READS_PER_EXEC):
        chunk = jobs[start : start + LOG_READS_PER_EXEC]
        states = [progresses.get(job.pk) or JobProgress(job=job) for job in chunk]
        offsets = [(progress.log_state or {}).get("offset", 0) for progress in states]
        argvs = [remote.read_log_argv(job, offset, max_bytes) for job, offset in zip(chunk, offsets, strict=True)]
        try:
            results = session.run_sequence(
                argvs, timeout_s=120, max_output_bytes=len(argvs) * (max_bytes + remote.SMALL_READ_OVERHEAD_BYTES)
            )
        except PortalError as exc:
            logger.warning("job_log_read_failed", extra={"code": exc.code})
            return
        for job, progress, result in zip(chunk, states, results, strict=True):
            if result.exit_code != 0:
                continue  # no log yet (the job has just started)
            change = feed_log(progress, result.stdout, now, job.profile.sync_interval_s)
            progress.save()
            if change == "STALLED":
                with transaction.atomic():  # the note and its message together
                    event = note(
                        job,
                        "STALLED",
                        source="sync",
                        detail="No new TIMING line in the NAMD log for much longer than usual.",
                    )
                    job_events.job_stalled(job, event)
            elif change == "RESUMED":
                note(job, "RESUMED", source="sync", detail="The NAMD log is moving again.")
