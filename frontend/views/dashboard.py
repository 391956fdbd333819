"""The start page: the member's jobs by state, their newest pipeline runs and sweeps, their recent events, and their
connection to each cluster."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from clusters import selectors as cluster_selectors
from jobs import pipeline_selectors, sweep_selectors
from jobs import selectors as job_selectors

RECENT_PIPELINES = 5
RECENT_SWEEPS = 5


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    sweeps = list(sweep_selectors.sweep_list(request.user)[:RECENT_SWEEPS])
    counts = sweep_selectors.sweep_state_counts(sweeps)
    context = {
        "sweep_rows": [(sweep, sweep_selectors.states_in_order(counts[sweep.pk])) for sweep in sweeps],
        "state_counts": job_selectors.job_state_counts(request.user),
        "events": job_selectors.recent_job_events(request.user),
        "connections": cluster_selectors.own_connection_states(request.user),
        "pipeline_rows": pipeline_selectors.pipeline_rows(
            pipeline_selectors.visible_pipeline_rows(request.user)[:RECENT_PIPELINES]
        ),
    }
    return render(request, "frontend/dashboard.html", context)
