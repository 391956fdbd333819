"""Following jobs in SLURM: the batched status sync, NAMD progress, stall detection, and the results copy.

Beat calls `request_due_syncs`; each due (member, cluster) group gets one `sync_member_jobs` run that
makes ONE status call (squeue + sacct in one exec, per 1000 ids) and one log read for its running
jobs, applies the states by conditional updates, and enqueues `finish_job` for every job that
became terminal. A Redis lock per group coalesces overlapping beats and "refresh now" clicks.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max, Min
from django.utils import timezone
from redis.exceptions import LockError

from clusters.gateway import MemberSession, redis_client
from clusters.slurm import JobStatus, PortalState, SlurmError
from jobs import remote
from jobs.models import QUEUED_STATES, TERMINAL_STATES, Job, JobProgress, JobState
from jobs.namd_log import LogProgress
from jobs.services import continue_after_timeout, write_metadata
from jobs.transitions import note, transition
from portal.errors import PortalError, RemoteCommandError

logger = logging.getLogger(__name__)

FAST_SYNC_WINDOW = timedelta(minutes=5)  # jobs submitted this recently are checked more often
FAST_SYNC_INTERVAL_S = 10
LOST_GRACE = timedelta(minutes=10)  # SLURM forgot the id this long ago: LOST, never guessed earlier
STALL_FACTOR = 5  # no new TIMING line for 5x the usual gap (or sync interval): stalled
MAX_LOG_BYTES_PER_SYNC = 2 * 1024 * 1024
MAX_LOG_BYTES_AT_FINISH = 16 * 1024 * 1024
LOG_READS_PER_EXEC = 200
SYNC_LOCK_TIMEOUT_S = 300
UNFINISHED_GRACE = timedelta(minutes=2)  # a terminal job whose finish task was lost is finished again
KEY_PREFIX = "namd-portal:job-sync"


def _queued_key(owner_id: int, profile_id: int) -> str:
    return f"{KEY_PREFIX}:queued:{owner_id}:{profile_id}"


def _lock_key(owner_id: int, profile_id: int) -> str:
    return f"{KEY_PREFIX}:lock:{owner_id}:{profile_id}"


def request_group_sync(*, owner_id: int, profile_id: int, countdown: float = 0) -> tuple[str, bool]:
    """Enqueue a sync of one member's jobs on one cluster unless one is queued or running: (task id, coalesced)."""
    from jobs.tasks import sync_member_jobs_task

    task_id = str(uuid.uuid4())
    key = _queued_key(owner_id, profile_id)
    if not redis_client().set(key, task_id, nx=True, ex=SYNC_LOCK_TIMEOUT_S):
        existing = redis_client().get(key)
        return (existing.decode() if existing else ""), True
    sync_member_jobs_task.apply_async(args=(owner_id, profile_id), task_id=task_id, countdown=countdown)
    return task_id, False


def request_due_syncs(now: datetime | None = None) -> int:
    """Beat: enqueue a sync for every group whose interval has passed; also re-finish lost finishes."""
    from jobs.tasks import finish_job_task

    now = now or timezone.now()
    epoch = datetime(1970, 1, 1, tzinfo=now.tzinfo)
    groups = (
        Job.objects.filter(state__in=QUEUED_STATES).exclude(slurm_job_id="")
        .values("owner_id", "profile_id", "profile__sync_interval_s")
        .annotate(oldest_sync=Min("last_synced_at"), newest_submit=Max("submitted_at"))
    )  # fmt: skip
    enqueued = 0
    for group in groups:
        since = (now - (group["oldest_sync"] or epoch)).total_seconds()
        is_recent = group["newest_submit"] is not None and group["newest_submit"] > now - FAST_SYNC_WINDOW
        if since >= group["profile__sync_interval_s"] or (is_recent and since >= FAST_SYNC_INTERVAL_S):
            _, coalesced = request_group_sync(owner_id=group["owner_id"], profile_id=group["profile_id"])
            enqueued += not coalesced
    lost_finishes = Job.objects.filter(
        state__in=TERMINAL_STATES, finished_at=None, updated_at__lt=now - UNFINISHED_GRACE
    ).exclude(slurm_job_id="")
    for job_id in lost_finishes.values_list("pk", flat=True)[:100]:
        finish_job_task.delay(job_id)
    return enqueued


def request_member_refresh(*, user_id: int, job: Job | None = None) -> list[tuple[str, bool]]:
    """ "Refresh now" for one job's group or all the member's groups: (task id, coalesced) per group."""
    jobs = Job.objects.filter(owner_id=user_id, state__in=QUEUED_STATES).exclude(slurm_job_id="")
    if job is not None:
        jobs = jobs.filter(pk=job.pk)
    groups = jobs.values_list("owner_id", "profile_id").distinct()
    return [request_group_sync(owner_id=owner_id, profile_id=profile_id) for owner_id, profile_id in groups]


# ------------------------------------------------------------------ one group


@dataclass
class SyncReport:
    jobs: int = 0
    changed: int = 0
    newly_terminal: int = 0
    coalesced: bool = False


def sync_member_jobs(*, owner_id: int, profile_id: int, task_id: str = "") -> SyncReport:
    """One status call for all of one member's active jobs on one cluster; transitions, progress, finishes."""
    lock = redis_client().lock(_lock_key(owner_id, profile_id), timeout=SYNC_LOCK_TIMEOUT_S, blocking=False)
    if not lock.acquire():
        return SyncReport(coalesced=True)
    try:
        return _sync_group(owner_id, profile_id, task_id)
    finally:
        redis_client().delete(_queued_key(owner_id, profile_id))
        try:
            lock.release()
        except LockError:  # the lock expired during a very long sync: the result above still stands
            logger.warning("job_sync_lock_expired", extra={"owner_id": owner_id, "profile_id": profile_id})


def _sync_group(owner_id: int, profile_id: int, task_id: str) -> SyncReport:
    from jobs.tasks import finish_job_task

    jobs = list(
        Job.objects.filter(owner_id=owner_id, profile_id=profile_id, state__in=QUEUED_STATES)
        .exclude(slurm_job_id="").select_related("owner", "profile")
    )  # fmt: skip
    report = SyncReport(jobs=len(jobs))
    if not jobs:
        return report
    now = timezone.now()
    ids = [job.pk for job in jobs]
    try:
        session = remote.member_session(jobs[0], task_id=task_id)
        statuses = session.slurm().statuses([job.slurm_job_id for job in jobs])
    except (PortalError, SlurmError) as exc:
        code = exc.code if isinstance(exc, PortalError) else "STATUS_QUERY_FAILED"
        Job.objects.filter(pk__in=ids).update(
            last_synced_at=now,
            error_code=f"SYNC_{code}"[:60],
            error_message="The last status check failed; the portal retries.",
        )
        logger.warning("job_sync_failed", extra={"owner_id": owner_id, "profile_id": profile_id, "code": code})
        return report
    changed = []
    for job in jobs:
        if apply_status(job, statuses.get(job.slurm_job_id), now):
            changed.append(job)
    running = [job for job in jobs if job.state in (JobState.RUNNING, JobState.COMPLETING)]
    if running:
        refresh_progress(session, running, now)
    Job.objects.filter(pk__in=ids).update(last_synced_at=now)
    Job.objects.filter(pk__in=ids, error_code__startswith="SYNC_").update(error_code="", error_message="")
    for job in changed:
        if job.state in TERMINAL_STATES:
            report.newly_terminal += 1
            finish_job_task.delay(job.pk)
        else:
            write_metadata(session, job)
    report.changed = len(changed)
    return report


def _aware(value: datetime | None) -> datetime | None:
    # SLURM prints the cluster's local time without a zone; the portal takes it as its own TIME_ZONE.
    return timezone.make_aware(value) if value is not None and timezone.is_naive(value) else value


def apply_status(job: Job, status: JobStatus | None, now: datetime) -> bool:
    """Apply SLURM's view of one job; True when its state changed. No status: LOST after the grace period."""
    if status is None:
        if job.missing_since is None:
            Job.objects.filter(pk=job.pk, state=job.state).update(missing_since=now)
            job.missing_since = now
            return False
        if now - job.missing_since < LOST_GRACE:
            return False
        detail = f"SLURM has no record of job {job.slurm_job_id} (purged and not in accounting)"
        return transition(job, JobState.LOST, source="sync", ended_at=now, detail=detail)
    fields: dict[str, object] = {
        "slurm_state": status.state_verbatim[:64], "slurm_reason": (status.reason or "")[:200], "missing_since": None,
    }  # fmt: skip
    if status.exit_code is not None:
        fields["exit_code"] = status.exit_code
    new_state = job.state if status.state == PortalState.UNKNOWN else JobState(status.state.value)
    has_started = new_state in (JobState.RUNNING, JobState.COMPLETING) or new_state in TERMINAL_STATES
    if has_started and job.started_at is None and status.started_at is not None:
        fields["started_at"] = _aware(status.started_at)
    if new_state in TERMINAL_STATES:
        fields["ended_at"] = _aware(status.ended_at) or now
    if new_state != job.state:
        reason = f" ({status.reason})" if status.reason and status.reason != "None" else ""
        return transition(job, new_state, source="sync", detail=f"SLURM: {status.state_verbatim}{reason}", **fields)
    if any(getattr(job, name) != value for name, value in fields.items()):
        Job.objects.filter(pk=job.pk, state=job.state).update(**fields)
        for name, value in fields.items():
            setattr(job, name, value)
    return False


# ------------------------------------------------------------------ NAMD progress


def _feed(progress: JobProgress, chunk: str, now: datetime, interval_s: int) -> str:
    """Feed new log bytes; returns "STALLED", "RESUMED" or ""."""
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
            results = session.run_sequence(argvs, timeout_s=120)
        except PortalError as exc:
            logger.warning("job_log_read_failed", extra={"code": exc.code})
            return
        for job, progress, result in zip(chunk, states, results, strict=True):
            if result.exit_code != 0:
                continue  # no log yet (the job has just started)
            change = _feed(progress, result.stdout, now, job.profile.sync_interval_s)
            progress.save()
            if change == "STALLED":
                note(job, "STALLED", source="sync",
                     detail="No new TIMING line in the NAMD log for much longer than usual.")  # fmt: skip
            elif change == "RESUMED":
                note(job, "RESUMED", source="sync", detail="The NAMD log is moving again.")


# ------------------------------------------------------------------ finish


def finish_job(*, job_id: int, task_id: str = "") -> None:
    """After a terminal state: rsync scratch -> project, read the rest of the log, stderr and the listing."""
    job = (
        Job.objects.select_related("owner", "profile", "parent", "template_version__template").filter(pk=job_id).first()
    )
    if job is None or job.state not in TERMINAL_STATES or job.finished_at is not None or not job.slurm_job_id:
        return
    progress, _ = JobProgress.objects.get_or_create(job=job)
    session = remote.member_session(job, task_id=task_id)
    _record_final_status(session, job)
    offset = (progress.log_state or {}).get("offset", 0)
    copy, log, stderr, listing = session.run_sequence([
        remote.copy_results_argv(job), remote.read_log_argv(job, offset, MAX_LOG_BYTES_AT_FINISH),
        remote.stderr_tail_argv(job), remote.list_dir_argv(job.project_dir),
    ], timeout_s=600)  # fmt: skip
    now = timezone.now()
    if log.exit_code == 0:
        _feed(progress, log.stdout, now, job.profile.sync_interval_s)
    progress.stalled_at = None
    if stderr.exit_code == 0:
        progress.stderr_tail = stderr.stdout
    if listing.exit_code == 0:
        progress.project_files = [entry.as_json() for entry in remote.parse_listing(listing.stdout)]
        progress.files_listed_at = now
    progress.logs_fetched_at = now
    progress.save()
    if not Job.objects.filter(pk=job.pk, finished_at=None).update(finished_at=now):
        return
    job.finished_at = now
    if copy.exit_code == 0:
        note(job, "RESULTS_COPIED", source="task", detail=f"{job.scratch_dir} -> {job.project_dir}")
    else:
        error = RemoteCommandError("Copying the results back failed; they are still in scratch.", code="RSYNC_FAILED")
        Job.objects.filter(pk=job.pk).update(error_code=error.code, error_message=error.user_message)
        note(job, "RESULTS_COPY_FAILED", source="task", detail=f"rsync exited {copy.exit_code}: {copy.stderr[:300]}")
    write_metadata(session, job)
    if job.state == JobState.TIMEOUT and job.continue_on_timeout:
        continue_after_timeout(job)


def _record_final_status(session: MemberSession, job: Job) -> None:
    """squeue reports a job that just ended without its exit code; sacct has it: ask once more."""
    try:
        status = session.slurm().statuses([job.slurm_job_id]).get(job.slurm_job_id)
    except SlurmError:
        return
    if status is None or not status.is_terminal:
        return
    fields = {"slurm_state": status.state_verbatim[:64]}
    if status.exit_code is not None:
        fields["exit_code"] = status.exit_code
    if status.ended_at is not None:
        fields["ended_at"] = _aware(status.ended_at)
    Job.objects.filter(pk=job.pk).update(**fields)


def fetch_logs(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Refresh the log tails now (the member asked): the new NAMD log bytes and SLURM's stderr."""
    from accounts.models import User
    from jobs.access import access_job

    job = access_job(user=User.objects.get(pk=acting_user_id), job_id=job_id)
    if not job.slurm_job_id:
        return
    session = remote.member_session(job, task_id=task_id)
    refresh_progress(session, [job], timezone.now())
    stderr = session.run(remote.stderr_tail_argv(job))
    fields: dict[str, object] = {"logs_fetched_at": timezone.now()}
    if stderr.exit_code == 0:
        fields["stderr_tail"] = stderr.stdout
    JobProgress.objects.update_or_create(job=job, defaults=fields)
