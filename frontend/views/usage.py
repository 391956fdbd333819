"""The usage page: core-hours, GPU-hours and SU of finished jobs by member, cluster, partition or month, a chart
per month (its figures in the container's `data-months`: htmx drops a JSON script tag from a swap) and the CSV
(the API's `/usage/csv` with the same filters). A member's own; a lab admin's default is the lab's. The filters
refresh the results with htmx. Reads only `accounting.selectors`: a few GROUP BY queries whatever the number of
jobs.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounting.selectors import GroupBy, usage_report_for
from frontend.usage_forms import UsageFilterForm


@login_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    form = UsageFilterForm(request.GET, user=request.user)  # no filters: the defaults
    template = "frontend/_usage_results.html" if request.htmx else "frontend/usage.html"
    if not form.is_valid():
        return render(request, template, {"form": form})
    scope, group_by, period = form.chosen_scope, form.chosen_group_by, form.chosen_period
    report = usage_report_for(request.user, scope=scope, group_by=group_by, period=period)
    by_month = GroupBy.MONTH
    months = (
        report
        if group_by == by_month
        else usage_report_for(request.user, scope=scope, group_by=by_month, period=period)
    )
    query = {"scope": scope.value, "group_by": group_by.value}
    query.update({name: str(value) for name, value in (("since", period.since), ("until", period.until)) if value})
    context = {
        "form": form,
        "scope": scope,
        "report": report,
        "chart_json": json.dumps(
            [
                {
                    "month": group.label,
                    "core_hours": float(group.core_hours),
                    "gpu_hours": float(group.gpu_hours),
                    "service_units": float(group.service_units),
                }
                for group in months.groups
            ]
        ),
        "has_chart": bool(months.groups),
        "csv_url": reverse("api:usage_csv") + "?" + urlencode(query),
    }
    return render(request, template, context)
