"""Reads of usage for pages, the API, exports and budgets: totals grouped in SQL, never rows in Python.

Every figure is a `GROUP BY` with `Sum` over what `accounting.access.visible_usage` lets the user read: the
monthly sums (`UsageMonth`) of the whole months in the period, plus the rows (`usage_owner_period` /
`usage_period` indexes) of the partial months at its edges, merged by group: the queries are the same, and
read about as much, for a thousand jobs or a hundred thousand. `su_used` is the figure budgets read.
`job_usage` sets a job's estimate (`templates_app.batch_script.estimate_cost`, at the rates of its partition)
beside what it used.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from accounting.access import UsageScope, visible_usage
from accounting.models import JobUsage, UsageMonth
from accounting.rates import rates_for
from accounts.models import User
from jobs.models import EDITABLE_STATES, Job, JobState
from portal.errors import InvalidInput
from templates_app import batch_script
from templates_app.services import cluster_settings

ZERO = Decimal(0)


class GroupBy(StrEnum):
    MEMBER = "member"
    CLUSTER = "cluster"
    PARTITION = "partition"
    MONTH = "month"


# What each grouping selects, from the usage rows and from their monthly sums.
ROW_COLUMNS: dict[GroupBy, dict[str, F | TruncMonth]] = {
    GroupBy.MEMBER: {"member": F("owner__username")},
    GroupBy.CLUSTER: {"cluster": F("profile__name")},
    GroupBy.PARTITION: {"cluster": F("profile__name"), "partition_name": F("partition")},
    GroupBy.MONTH: {"bucket": TruncMonth("ended_at")},
}
MONTH_COLUMNS: dict[GroupBy, dict[str, F | TruncMonth]] = {
    **ROW_COLUMNS,
    GroupBy.MONTH: {"bucket": F("month")},
}


@dataclass(frozen=True)
class Period:
    """Inclusive dates in the portal's time zone; None: open on that side."""

    since: date | None = None
    until: date | None = None

    def apply(self, rows: QuerySet[JobUsage]) -> QuerySet[JobUsage]:
        return _ended_within(rows, self.since, self.until + timedelta(days=1) if self.until else None)


def _ended_within(rows: QuerySet[JobUsage], start: date | None, end: date | None) -> QuerySet[JobUsage]:
    """Rows ended on or after `start` and before `end` (days in the portal's time zone)."""
    if start is not None:
        rows = rows.filter(ended_at__gte=timezone.make_aware(datetime.combine(start, time.min)))
    if end is not None:
        rows = rows.filter(ended_at__lt=timezone.make_aware(datetime.combine(end, time.min)))
    return rows


def _first_of_next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def period(since: date | None, until: date | None) -> Period:
    """The period asked for. Raises InvalidInput (USAGE_PERIOD_INVALID) when it ends before it starts."""
    if since is not None and until is not None and until < since:
        raise InvalidInput(
            "The period ends before it starts: 'until' must be on or after 'since'.", code="USAGE_PERIOD_INVALID"
        )
    return Period(since=since, until=until)


@dataclass(frozen=True)
class UsageGroup:
    label: str  # the member, cluster, "cluster / partition" or "YYYY-MM"
    jobs: int
    core_hours: Decimal
    gpu_hours: Decimal
    service_units: Decimal


@dataclass(frozen=True)
class UsageReport:
    group_by: GroupBy
    period: Period
    groups: list[UsageGroup]
    total: UsageGroup


SUMS = {
    "jobs_sum": Sum("jobs"),
    "core_hours_sum": Sum("core_hours"),
    "gpu_hours_sum": Sum("gpu_hours"),
    "service_units_sum": Sum("service_units"),
}
ROW_SUMS = {**SUMS, "jobs_sum": Count("pk")}


def _label(group_by: GroupBy, row: dict[str, object]) -> str:
    if group_by == GroupBy.MONTH:
        bucket = row["bucket"]  # a date from the monthly sums, an aware datetime from TruncMonth over rows
        return f"{timezone.localtime(bucket) if isinstance(bucket, datetime) else bucket:%Y-%m}"
    if group_by == GroupBy.PARTITION:
        return f"{row['cluster']} / {row['partition_name'] or '(none)'}"
    return str(row[group_by.value])


def _grouped(rows: QuerySet, columns: dict[str, F | TruncMonth], sums: dict[str, Count | Sum]) -> QuerySet:
    return rows.order_by().values(**columns).annotate(**sums).order_by()


def usage_report(
    months: QuerySet[UsageMonth], rows: QuerySet[JobUsage], *, group_by: GroupBy, period: Period
) -> UsageReport:
    """Totals of the visible usage in the period, grouped, from the monthly sums of the whole months it covers
    and the rows of the partial months at its edges (at most three GROUP BY queries, whatever the jobs)."""
    start, end = period.since, period.until + timedelta(days=1) if period.until else None
    whole_from = start if start is None or start.day == 1 else _first_of_next_month(start)
    whole_to = end.replace(day=1) if end is not None else None  # whole months: [whole_from, whole_to)
    parts = []
    if whole_from is not None and whole_to is not None and whole_from >= whole_to:
        parts.append(_grouped(_ended_within(rows, start, end), ROW_COLUMNS[group_by], ROW_SUMS))
    else:
        in_months = months if whole_from is None else months.filter(month__gte=whole_from)
        in_months = in_months if whole_to is None else in_months.filter(month__lt=whole_to)
        parts.append(_grouped(in_months, MONTH_COLUMNS[group_by], SUMS))
        if start is not None and whole_from is not None and start < whole_from:
            parts.append(_grouped(_ended_within(rows, start, whole_from), ROW_COLUMNS[group_by], ROW_SUMS))
        if end is not None and whole_to is not None and whole_to < end:
            parts.append(_grouped(_ended_within(rows, whole_to, end), ROW_COLUMNS[group_by], ROW_SUMS))
    merged: dict[str, list[Decimal]] = {}
    for part in parts:
        for row in part:
            sums = merged.setdefault(_label(group_by, row), [ZERO, ZERO, ZERO, ZERO])
            for index, name in enumerate(SUMS):
                sums[index] += row[name] or ZERO
    groups = [
        UsageGroup(label=label, jobs=int(sums[0]), core_hours=sums[1], gpu_hours=sums[2], service_units=sums[3])
        for label, sums in sorted(merged.items())
    ]
    total = UsageGroup(
        label="Total",
        jobs=sum(group.jobs for group in groups),
        core_hours=sum((group.core_hours for group in groups), ZERO),
        gpu_hours=sum((group.gpu_hours for group in groups), ZERO),
        service_units=sum((group.service_units for group in groups), ZERO),
    )
    return UsageReport(group_by=group_by, period=period, groups=groups, total=total)


def usage_report_for(user: User, *, scope: UsageScope, group_by: GroupBy, period: Period) -> UsageReport:
    """`usage_report` of what `user` may read in `scope`. Raises Forbidden (USAGE_LAB_ONLY_ADMINS)."""
    months = visible_usage(user, scope=scope, model=UsageMonth)
    return usage_report(months, visible_usage(user, scope=scope), group_by=group_by, period=period)


def usage_csv(report: UsageReport) -> str:
    """The report as CSV: a header, a row per group, the total last."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([report.group_by.value, "jobs", "core_hours", "gpu_hours", "service_units"])
    for group in [*report.groups, report.total]:
        writer.writerow([group.label, group.jobs, group.core_hours, group.gpu_hours, group.service_units])
    return out.getvalue()


def su_used(*, since: date, until: date, owner_id: int | None = None, account: str | None = None) -> Decimal:
    """The SU charged in a period to one member or one SLURM account (budgets read this). One query."""
    if (owner_id is None) == (account is None):
        raise ValueError("give exactly one of owner_id and account")
    rows = (
        JobUsage.objects.filter(owner_id=owner_id) if owner_id is not None else JobUsage.objects.filter(account=account)
    )
    return Period(since=since, until=until).apply(rows).aggregate(total=Coalesce(Sum("service_units"), ZERO))["total"]


def su_committed(*, owner_id: int | None = None, account: str | None = None) -> Decimal:
    """The estimated SU of one member's (or one SLURM account's) jobs sent to SLURM and not accounted yet
    (queued, running, or ended with their accounting to come): what a budget must hold back so that many
    submissions at once cannot each fit in what is left. Two queries (the jobs with their profiles, the profiles'
    partitions) whatever the number of jobs; the estimates are worked out per job."""
    if (owner_id is None) == (account is None):
        raise ValueError("give exactly one of owner_id and account")
    sent = Q(state=JobState.SUBMITTING) | ~Q(slurm_job_id="")
    jobs = Job.objects.filter(sent, usage__isnull=True, deleted_at=None).exclude(state__in=EDITABLE_STATES)
    jobs = jobs.filter(owner_id=owner_id) if owner_id is not None else jobs.filter(resources__account=account)
    committed = ZERO
    for job in jobs.select_related("profile").prefetch_related("profile__partitions").only("resources", "profile"):
        estimate = job_estimate(job)
        committed += estimate.service_units if estimate is not None else ZERO
    return committed


@dataclass(frozen=True)
class JobUsageComparison:
    """What the portal estimated before submission beside what SLURM accounted (None: not yet accounted)."""

    estimate: batch_script.CostEstimate | None
    actual: JobUsage | None


def job_estimate(job: Job) -> batch_script.CostEstimate | None:
    """The pre-submission estimate of a job at its partition's rates; None when its resources are not a job's."""
    try:
        resources = batch_script.Resources(**job.resources)
    except TypeError:
        return None
    profile = job.profile
    rates = rates_for(
        su_per_core_hour=profile.su_per_core_hour,
        su_per_gpu_hour=profile.su_per_gpu_hour,
        by_partition=profile.su_rates_by_partition,
        partition=resources.partition,
    )
    settings = dataclasses.replace(cluster_settings(profile), **dataclasses.asdict(rates))
    return batch_script.estimate_cost(settings, resources)


def job_usage(job: Job) -> JobUsageComparison:
    """A job (already loaded through `jobs.access`) with its estimate and its usage row."""
    return JobUsageComparison(estimate=job_estimate(job), actual=JobUsage.objects.filter(job=job).first())
