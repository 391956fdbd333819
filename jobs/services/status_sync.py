"""Following jobs in SLURM: the batched status sync of each member's jobs on each cluster.

Beat calls `request_due_syncs`; each due (member, cluster) group gets one `sync_member_jobs` run that
makes ONE status call (squeue + sacct in one exec, per 1000 ids) and one log read for its running
jobs, applies the states by conditional updates, and orders `finish_job` for every job that
became terminal (`jobs.services.finishing`) in the transaction that made it terminal. A Redis lock
per group coalesces overlapping beats and "refresh now" clicks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import uuid4

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone
from redis.exceptions import LockError

from clusters.gateway import redis_client
from clusters.slurm import JobStatus, PortalState, SlurmError
from jobs import remote
from jobs.models import QUEUED_STATES, TERMINAL_STATES, Job, JobState
from jobs.services.progress import refresh_progress
from jobs.services.viewer import frames_for_sync
from jobs.transitions import transition
from portal.enqueue import enqueue_on_commit
from portal.errors import PortalError
from portal.queues import cluster_queue

logger = logging.getLogger(__name__)

FAST_SYNC_WINDOW = timedelta(minutes=5)  # jobs submitted this recently are checked more often
FAST_SYNC_INTERVAL_S = 10
LOST_GRACE = timedelta(minutes=10)  # SLURM forgot the id this long ago: LOST, never guessed earlier
SYNC_LOCK_TIMEOUT_S = 60  # a killed sync holds its group for at most this long
KEY_PREFIX = "namd-portal:job-sync"


def _lock_key(owner_id: int, profile_id: int) -> str:
    return f"{KEY_PREFIX}:lock:{owner_id}:{profile_id}"


def request_group_sync(*, owner_id: int, profile_id: int, countdown: float = 0) -> tuple[str, bool]:
    """Order a sync of one member's jobs on one cluster unless one is queued or running: (task id, coalesced).

    One open order per group (its key) coalesces overlapping beats and clicks, in PostgreSQL: a click while
    Redis is away is still taken.
    """
    task_id = str(uuid4())
    ordered = enqueue_on_commit(
        "jobs.tasks.sync_member_jobs_task",
        owner_id,
        profile_id,
        task_id=task_id,
        countdown=countdown,
        key=f"sync:{owner_id}:{profile_id}",
        queue=cluster_queue(profile_id),
    )
    return ordered, ordered != task_id


def request_due_syncs(now: datetime | None = None) -> int:
    """Beat: enqueue a sync for every group whose interval has passed."""
    now = now or timezone.now()
    epoch = datetime(1970, 1, 1, tzinfo=now.tzinfo)
    groups = (
        Job.objects.filter(state__in=QUEUED_STATES)
        .exclude(slurm_job_id="")
        .values("owner_id", "profile_id", "profile__sync_interval_s")
        .annotate(oldest_sync=Min("last_synced_at"), newest_submit=Max("submitted_at"))
    )
    enqueued = 0
    for group in groups:
        since = (now - (group["oldest_sync"] or epoch)).total_seconds()
        is_recent = group["newest_submit"] is not None and group["newest_submit"] > now - FAST_SYNC_WINDOW
        if since >= group["profile__sync_interval_s"] or (is_recent and since >= FAST_SYNC_INTERVAL_S):
            _, coalesced = request_group_sync(owner_id=group["owner_id"], profile_id=group["profile_id"])
            enqueued += not coalesced
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
        try:
            lock.release()
        except LockError:  # the lock expired during a very long sync: the result above still stands
            logger.warning("job_sync_lock_expired", extra={"owner_id": owner_id, "profile_id": profile_id})


def _sync_group(owner_id: int, profile_id: int, task_id: str) -> SyncReport:
    jobs = list(
        Job.objects.filter(owner_id=owner_id, profile_id=profile_id, state__in=QUEUED_STATES)
        .exclude(slurm_job_id="")
        .select_related("owner", "profile")
    )
    report = SyncReport(jobs=len(jobs))
    if not jobs:
        return report
    now = timezone.now()
    ids = [job.pk for job in jobs]
    try:
        session = remote.member_session(jobs[0], acting_user_id=None, task_id=task_id, for_group=True)
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
        with transaction.atomic():  # a terminal state and its finish order are one write
            if apply_status(job, statuses.get(job.slurm_job_id), now):
                changed.append(job)
                if job.state in TERMINAL_STATES:
                    order_finish(job.pk, profile_id=job.profile_id)
    running = [job for job in jobs if job.state in (JobState.RUNNING, JobState.COMPLETING)]
    if running:
        refresh_progress(session, running, now)
        frames_for_sync(session, running)
    Job.objects.filter(pk__in=ids).update(last_synced_at=now)
    Job.objects.filter(pk__in=ids, error_code__startswith="SYNC_").update(error_code="", error_message="")
    for job in changed:
        if job.state in TERMINAL_STATES:
            report.newly_terminal += 1
        else:
            remote.write_metadata(session, job)
    report.changed = len(changed)
    return report


def order_finish(job_id: int, *, profile_id: int) -> str:
    """The finish of a terminal job (its results copied from the cluster), ordered once: an order still open for
    it is the one kept."""
    return enqueue_on_commit(
        "jobs.tasks.finish_job_task", job_id, key=f"finish:{job_id}", queue=cluster_queue(profile_id)
    )


def slurm_time(value: datetime | None) -> datetime | None:
    """A time SLURM printed: its cluster's local time without a zone, taken as the portal's TIME_ZONE."""
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
        "slurm_state": status.state_verbatim[:64],
        "slurm_reason": (status.reason or "")[:200],
        "missing_since": None,
    }
    if status.exit_code is not None:
        fields["exit_code"] = status.exit_code
    new_state = job.state if status.state == PortalState.UNKNOWN else JobState(status.state.value)
    has_started = new_state in (JobState.RUNNING, JobState.COMPLETING) or new_state in TERMINAL_STATES
    if has_started and job.started_at is None and status.started_at is not None:
        fields["started_at"] = slurm_time(status.started_at)
    if new_state in TERMINAL_STATES:
        fields["ended_at"] = slurm_time(status.ended_at) or now
    if new_state != job.state:
        reason = f" ({status.reason})" if status.reason and status.reason != "None" else ""
        return transition(job, new_state, source="sync", detail=f"SLURM: {status.state_verbatim}{reason}", **fields)
    if any(getattr(job, name) != value for name, value in fields.items()):
        Job.objects.filter(pk=job.pk, state=job.state).update(**fields)
        for name, value in fields.items():
            setattr(job, name, value)
    return False
