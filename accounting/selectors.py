"""Reads of usage for pages, the API, exports and budgets: totals grouped in SQL, never rows in Python.

Every figure is a `GROUP BY` with `Sum` over rows already restricted by `accounting.access.visible_usage`
and a period on `ended_at` (the `usage_owner_period` / `usage_period` indexes): the queries are the same
for ten rows or a hundred thousand. `su_used` is the figure budgets read. `job_usage` sets a job's
estimate (`templates_app.batch_script.estimate_cost`, at the rates of its partition) beside what it used.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from accounting.models import JobUsage
from accounting.rates import rates_for
from jobs.models import Job
from portal.errors import InvalidInput
from templates_app import batch_script
from templates_app.services import cluster_settings

ZERO = Decimal(0)


class GroupBy(StrEnum):
    MEMBER = "member"
    CLUSTER = "cluster"
    PARTITION = "partition"
    MONTH = "month"


# What each grouping selects: a label expression, and the columns it groups on.
GROUP_COLUMNS: dict[GroupBy, dict[str, F | TruncMonth]] = {
    GroupBy.MEMBER: {"member": F("owner__username")},
    GroupBy.CLUSTER: {"cluster": F("profile__name")},
    GroupBy.PARTITION: {"cluster": F("profile__name"), "partition_name": F("partition")},
    GroupBy.MONTH: {"month": TruncMonth("ended_at")},
}


@dataclass(frozen=True)
class Period:
    """Inclusive dates in the portal's time zone; None: open on that side."""

    since: date | None = None
    until: date | None = None

    def apply(self, rows: QuerySet[JobUsage]) -> QuerySet[JobUsage]:
        if self.since is not None:
            rows = rows.filter(ended_at__gte=timezone.make_aware(datetime.combine(self.since, time.min)))
        if self.until is not None:
            rows = rows.filter(
                ended_at__lt=timezone.make_aware(datetime.combine(self.until + timedelta(days=1), time.min))
            )
        return rows


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


def _sums() -> dict[str, Count | Coalesce]:
    return {
        "jobs": Count("pk"),
        "core_hours_sum": Coalesce(Sum("core_hours"), ZERO),
        "gpu_hours_sum": Coalesce(Sum("gpu_hours"), ZERO),
        "service_units_sum": Coalesce(Sum("service_units"), ZERO),
    }


def _label(group_by: GroupBy, row: dict[str, object]) -> str:
    if group_by == GroupBy.MONTH:
        month = row["month"]
        return timezone.localtime(month).strftime("%Y-%m") if isinstance(month, datetime) else str(month)
    if group_by == GroupBy.PARTITION:
        return f"{row['cluster']} / {row['partition_name'] or '(none)'}"
    return str(row[group_by.value])


def _group(label: str, row: dict[str, object]) -> UsageGroup:
    return UsageGroup(
        label=label,
        jobs=int(row["jobs"]),  # type: ignore[call-overload]
        core_hours=row["core_hours_sum"],  # type: ignore[arg-type]
        gpu_hours=row["gpu_hours_sum"],  # type: ignore[arg-type]
        service_units=row["service_units_sum"],  # type: ignore[arg-type]
    )


def usage_report(rows: QuerySet[JobUsage], *, group_by: GroupBy, period: Period) -> UsageReport:
    """Totals of the visible rows in the period, grouped: two queries (the groups, the total)."""
    in_period = period.apply(rows)
    columns = GROUP_COLUMNS[group_by]
    grouped = in_period.order_by().values(**columns).annotate(**_sums()).order_by(*columns)
    groups = [_group(_label(group_by, row), row) for row in grouped]
    total = in_period.order_by().aggregate(**_sums())
    return UsageReport(group_by=group_by, period=period, groups=groups, total=_group("Total", total))


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
