"""Recording what finished jobs used: ONE sacct call for all of a member's unaccounted jobs on a cluster.

`record_usage` (the task's service) finds the member's finished jobs on the cluster with no usage row,
asks sacct once for all of them (the chunks of `MAX_JOB_IDS_PER_COMMAND` ids as parts of one exec) and
writes a row per job: SLURM's figures, or the portal's own times (flagged) for a job accounting no longer
has, and recomputes the member's monthly sums (`UsageMonth`) from those rows in the same transaction, where
the budgets those rows count in notify at 80 % and 100 % (`accounting.budget_alerts`). Rows
are unique per job and written with `ignore_conflicts`, and a month's sum is recomputed whole, so a run
killed at any line and sent again writes nothing twice.
`request_due_accounting` (beat) orders the groups whose order was lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from accounting.budget_alerts import notify_budget_thresholds
from accounting.models import JobUsage, UsageMonth
from accounting.orders import request_usage_accounting
from accounting.rates import Rates, charge, rates_for
from clusters.slurm import JobUsageRecord, SlurmError, build_usage_argv, chunk_job_ids, parse_usage_output
from jobs import remote
from jobs.models import Job
from jobs.services.status_sync import slurm_time
from portal.errors import ClusterUnreachable

MAX_JOBS_PER_RUN = 5000  # a backlog larger than this is accounted by the next order (beat's sweep)
# sacct still reports a finished job as running (slurmdbd's lag): wait this long, then use the portal's times.
ACCOUNTING_PATIENCE = timedelta(hours=6)
SWEEP_AFTER = timedelta(minutes=2)  # a job finished this long ago with no usage row lost its order
SWEEP_WINDOW = timedelta(days=7)


def unaccounted_jobs(*, owner_id: int | None = None, profile_id: int | None = None) -> Q:
    """Finished jobs that reached SLURM and have no usage row."""
    condition = Q(finished_at__isnull=False, usage__isnull=True) & ~Q(slurm_job_id="")
    if owner_id is not None:
        condition &= Q(owner_id=owner_id, profile_id=profile_id)
    return condition


def record_usage(*, owner_id: int, profile_id: int, task_id: str = "") -> int:
    """Account every finished job of one member on one cluster that has no usage row; the rows written.

    Raises ClusterUnreachable (USAGE_QUERY_FAILED, transient) when sacct fails or prints what cannot be read,
    and the session's errors (CREDENTIAL_NOT_FOUND, UNREACHABLE ...).
    """
    jobs = list(
        Job.objects.filter(unaccounted_jobs(owner_id=owner_id, profile_id=profile_id))
        .select_related("profile")
        .order_by("pk")[:MAX_JOBS_PER_RUN]
    )
    if not jobs:
        return 0
    records = _accounting_of(jobs, task_id)
    now = timezone.now()
    rows = []
    for job in jobs:
        record = records.get(job.slurm_job_id)
        if record is not None and record.is_terminal:
            rows.append(_row_from_record(job, record))
        elif record is None or job.finished_at < now - ACCOUNTING_PATIENCE:
            rows.append(_row_from_portal_times(job))
        # else: accounting has not caught up with the job's end yet; beat's sweep orders it again
    if rows:
        with transaction.atomic():
            JobUsage.objects.bulk_create(rows, ignore_conflicts=True)  # unique per job: a re-run adds nothing
            earliest = min(row.ended_at for row in rows)
            roll_up_usage(owner_ids=[owner_id], profile_id=profile_id, since=month_start(earliest))
            notify_budget_thresholds(member_id=owner_id, accounts={row.account for row in rows})
    return len(rows)


def _accounting_of(jobs: list[Job], task_id: str) -> dict[str, JobUsageRecord]:
    session = remote.member_session(jobs[0], acting_user_id=None, task_id=task_id, for_group=True)
    chunks = chunk_job_ids(job.slurm_job_id for job in jobs)
    results = session.run_sequence([list(build_usage_argv(chunk)) for chunk in chunks], timeout_s=120)
    records: dict[str, JobUsageRecord] = {}
    try:
        for chunk, result in zip(chunks, results, strict=True):
            records.update(parse_usage_output(result, chunk))
    except SlurmError as exc:
        raise ClusterUnreachable(
            "SLURM's accounting did not answer as expected; the portal asks again later.", code="USAGE_QUERY_FAILED"
        ) from exc
    return records


def _rates(job: Job, partition: str) -> Rates:
    profile = job.profile
    return rates_for(
        su_per_core_hour=profile.su_per_core_hour,
        su_per_gpu_hour=profile.su_per_gpu_hour,
        by_partition=profile.su_rates_by_partition,
        partition=partition,
    )


def _row(job: Job, *, partition: str, elapsed_s: int, cpu_time_s: int, gpus: int, **fields: object) -> JobUsage:
    rates = _rates(job, partition)
    charged = charge(cpu_time_s=cpu_time_s, gpu_time_s=gpus * elapsed_s, rates=rates)
    return JobUsage(
        job=job,
        owner_id=job.owner_id,
        profile_id=job.profile_id,
        partition=partition,
        elapsed_s=elapsed_s,
        cpu_time_s=cpu_time_s,
        gpus=gpus,
        core_hours=charged.core_hours,
        gpu_hours=charged.gpu_hours,
        service_units=charged.service_units,
        su_per_core_hour=rates.su_per_core_hour,
        su_per_gpu_hour=rates.su_per_gpu_hour,
        **fields,
    )


def _row_from_record(job: Job, record: JobUsageRecord) -> JobUsage:
    return _row(
        job,
        partition=record.partition,
        elapsed_s=record.elapsed_s,
        cpu_time_s=record.cpu_time_s,
        gpus=record.tres.gpus,
        account=record.account,
        slurm_state=record.state_verbatim[:64],
        started_at=slurm_time(record.started_at),
        ended_at=slurm_time(record.ended_at) or job.ended_at or job.finished_at,
        cpus=record.tres.cpus,
        memory_mb=record.tres.memory_mb,
        nodes=record.tres.nodes,
    )


def _row_from_portal_times(job: Job) -> JobUsage:
    """SLURM has no record: the portal's times and the resources it asked for, flagged as such."""
    resources = job.resources
    nodes = int(resources.get("nodes", 1))
    cpus = nodes * int(resources.get("ntasks", 1)) * int(resources.get("cpus_per_task", 1))
    has_run = job.started_at is not None and job.ended_at is not None
    elapsed_s = max(int((job.ended_at - job.started_at).total_seconds()), 0) if has_run else 0
    return _row(
        job,
        partition=str(resources.get("partition", "")),
        elapsed_s=elapsed_s,
        cpu_time_s=elapsed_s * cpus,
        gpus=nodes * int(resources.get("gpus", 0)),
        account=str(resources.get("account") or ""),
        slurm_state=job.slurm_state[:64],
        started_at=job.started_at,
        ended_at=job.ended_at or job.finished_at,
        cpus=cpus if has_run else 0,
        nodes=nodes if has_run else 0,
        is_from_portal_times=True,
    )


def month_start(moment: datetime) -> datetime:
    """The start of the month `moment` falls in, in the portal's time zone."""
    return timezone.localtime(moment).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def roll_up_usage(*, owner_ids: list[int], profile_id: int | None = None, since: datetime | None = None) -> int:
    """Recompute, whole, every monthly sum of these members (on one cluster, from a month on); the buckets written.

    Idempotent: each bucket is the GROUP BY of its rows, upserted (a re-run, or two runs, write the same).
    """
    rows = JobUsage.objects.filter(owner_id__in=owner_ids)
    if profile_id is not None:
        rows = rows.filter(profile_id=profile_id)
    if since is not None:
        rows = rows.filter(ended_at__gte=since)
    buckets = (
        rows.order_by()
        .values("owner_id", "profile_id", "partition", bucket=TruncMonth("ended_at"))
        .annotate(count=Count("pk"), core=Sum("core_hours"), gpu=Sum("gpu_hours"), su=Sum("service_units"))
    )
    months = [
        UsageMonth(
            owner_id=bucket["owner_id"],
            profile_id=bucket["profile_id"],
            partition=bucket["partition"],
            month=timezone.localtime(bucket["bucket"]).date(),
            jobs=bucket["count"],
            core_hours=bucket["core"],
            gpu_hours=bucket["gpu"],
            service_units=bucket["su"],
        )
        for bucket in buckets
    ]
    UsageMonth.objects.bulk_create(
        months,
        update_conflicts=True,
        unique_fields=["owner", "profile", "partition", "month"],
        update_fields=["jobs", "core_hours", "gpu_hours", "service_units"],
    )
    return len(months)


def request_due_accounting(now: datetime | None = None) -> int:
    """Beat: order the accounting of every group with a job finished a while ago and still unaccounted."""
    now = now or timezone.now()
    groups = (
        Job.objects.filter(unaccounted_jobs(), finished_at__range=(now - SWEEP_WINDOW, now - SWEEP_AFTER))
        .values_list("owner_id", "profile_id")
        .distinct()
    )
    return len([request_usage_accounting(owner_id=owner, profile_id=profile) for owner, profile in groups])
