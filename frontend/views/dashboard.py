"""The start page: the member's jobs by state, their newest pipeline runs, their recent events, and their connection
to each cluster."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from clusters import selectors as cluster_selectors
from jobs import pipeline_selectors
from jobs import selectors as job_selectors

RECENT_PIPELINES = 5


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {
        "state_counts": job_selectors.job_state_counts(request.user),
        "events": job_selectors.recent_job_events(request.user),
        "connections": cluster_selectors.own_connection_states(request.user),
        "pipeline_rows": pipeline_selectors.pipeline_rows(
            pipeline_selectors.visible_pipeline_rows(request.user)[:RECENT_PIPELINES]
        ),
    }
    return render(request, "frontend/dashboard.html", context)
