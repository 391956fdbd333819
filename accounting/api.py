"""Usage over the API: `GET /usage` (grouped totals), `GET /usage/csv`, `GET /jobs/{id}/usage` (estimate vs used),
`GET /budgets` (the budgets that apply to you, or all for a lab admin, with used and remaining).

Thin: each call parses its query, reads rows through `accounting.access.visible_usage` (or the job through
`jobs.access.access_job`) and one selector.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from accounting import budgets, selectors
from accounting.access import UsageScope, default_scope, visible_budgets
from accounting.schemas import BudgetOut, JobUsageOut, UsageReportOut
from jobs.access import access_job
from portal.schemas import error_responses

router = Router(tags=["usage"])
CSV_RESPONSE = {"responses": {200: {"description": "The groups as CSV, the total last.", "content": {"text/csv": {}}}}}


def _report(
    request: HttpRequest, scope: UsageScope | None, group_by: selectors.GroupBy, since: date | None, until: date | None
) -> tuple[UsageScope, selectors.UsageReport]:
    chosen = scope or default_scope(request.auth)
    period = selectors.period(since, until)
    return chosen, selectors.usage_report_for(request.auth, scope=chosen, group_by=group_by, period=period)


@router.get("/usage", response={200: UsageReportOut, **error_responses(403)})
def usage(
    request: HttpRequest,
    group_by: selectors.GroupBy = selectors.GroupBy.MONTH,
    since: date | None = None,
    until: date | None = None,
    scope: UsageScope | None = None,
) -> dict[str, Any]:
    """Core-hours, GPU-hours and SU of finished jobs ended in [since, until] (dates, inclusive), grouped by
    member, cluster, partition or month. Yours; a lab admin's default scope is the lab (everyone's)."""
    chosen, report = _report(request, scope, group_by, since, until)
    return {
        "scope": chosen.value,
        "group_by": report.group_by.value,
        "since": report.period.since,
        "until": report.period.until,
        "groups": report.groups,
        "total": report.total,
    }


@router.get("/usage/csv", response={200: None, **error_responses(403)}, openapi_extra=CSV_RESPONSE)
def usage_csv(
    request: HttpRequest,
    group_by: selectors.GroupBy = selectors.GroupBy.MONTH,
    since: date | None = None,
    until: date | None = None,
    scope: UsageScope | None = None,
) -> HttpResponse:
    """The same report as CSV."""
    chosen, report = _report(request, scope, group_by, since, until)
    response = HttpResponse(selectors.usage_csv(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="usage-{chosen.value}-{group_by.value}.csv"'
    return response


@router.get("/jobs/{int:job_id}/usage", response=JobUsageOut)
def job_usage(request: HttpRequest, job_id: int) -> dict[str, Any]:
    """The job's estimate before submission beside what SLURM accounted once it finished."""
    comparison = selectors.job_usage(access_job(user=request.auth, job_id=job_id))
    return {"job_id": job_id, "estimate": comparison.estimate, "actual": comparison.actual}


def _budget_out(status: budgets.BudgetStatus) -> dict[str, Any]:
    budget = status.budget
    return {
        "id": budget.pk,
        "scope": budget.scope_label,
        "member": budget.member.username if budget.member is not None else None,
        "account": budget.account,
        "period": budget.period,
        "window_start": status.window.start,
        "window_end": status.window.end,
        "limit_su": budget.limit_su,
        "is_hard": budget.is_hard,
        "used_su": status.used_su,
        "committed_su": status.committed_su,
        "remaining_su": status.remaining_su,
        "fraction": float(status.fraction),
    }


@router.get("/budgets", response=list[BudgetOut])
def list_budgets(request: HttpRequest) -> list[dict[str, Any]]:
    """The SU budgets that apply to you (yours and your SLURM accounts'; every budget for a lab admin), each with
    the SU used in its current window and what is left."""
    return [_budget_out(status) for status in budgets.budget_statuses(visible_budgets(request.auth))]
