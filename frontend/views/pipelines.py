"""Pipeline runs: the list (yours, or the lab's for a lab admin), a run's page (its step graph, the timeline of
its jobs, one energy plot across its steps on a continuous step axis; polled while a step is active) and its
actions: submit, cancel, resume with values to change, clone.

Views parse input, make one access, selector or service call and render; every run is loaded through
`jobs.access` (another member's run is a 404; a lab admin sees it and may clone it, nothing more: 403).
Nothing here talks to a cluster: submit and cancel enqueue tasks, and the page polls until the run settles.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from frontend.pipeline_forms import ResumeForm
from frontend.views.job_detail import ENERGY_COLUMNS
from jobs import pipeline_selectors, services, sweep_selectors
from jobs.access import access_pipeline, access_pipeline_to_act, can_act_on_pipeline
from jobs.models import Pipeline
from jobs.pipeline_steps import current_steps, upload_step
from portal.errors import Forbidden, NotFound, PortalError

PAGE_SIZE = 25
SETTLED_EVENT = "pipeline-settled"  # HX-Trigger once no step is active: pipeline_detail.js reads the plot a last time


@login_required
@require_GET
def pipeline_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(pipeline_selectors.visible_pipeline_rows(request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = pipeline_selectors.pipeline_rows(page)
    context = {"page": page, "rows": rows, "rows_poll": any(row.is_active for row in rows), "page_prefix": "?"}
    # The rows' own poll (htmx) gets the table body only.
    return render(request, "frontend/_pipeline_rows.html" if request.htmx else "frontend/pipeline_list.html", context)


def _overview_context(request: HttpRequest, pipeline: Pipeline) -> dict[str, Any]:
    overview = pipeline_selectors.pipeline_overview(pipeline)
    can_act = can_act_on_pipeline(request.user, pipeline)
    holder = overview.upload_job
    return {
        "pipeline": pipeline,
        "overview": overview,
        "can_act": can_act,
        "input_problems": services.input_problems(holder) if holder is not None and can_act else [],
    }


@login_required
@require_GET
def pipeline_detail(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    pipeline = access_pipeline(user=request.user, pipeline_id=pipeline_id)
    energies = reverse("api:get_energies", kwargs={"pipeline_id": pipeline.pk})
    context = {
        **_overview_context(request, pipeline),
        "energies_url": f"{energies}?columns={ENERGY_COLUMNS}",
        "sweep_point": sweep_selectors.sweep_point_of(request.user, pipeline_id=pipeline.pk),
    }
    return render(request, "frontend/pipeline_detail.html", context)


@login_required
@require_GET
def live_panel(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    """The polled part (state, step graph, timeline, actions); once no step is active it stops and tells the
    plot to read the energies a last time."""
    pipeline = access_pipeline(user=request.user, pipeline_id=pipeline_id)
    context = _overview_context(request, pipeline)
    response = render(request, "frontend/_pipeline_live.html", context)
    if not context["overview"].is_active:
        response["HX-Trigger"] = SETTLED_EVENT
    return response


def _back(pipeline_id: int) -> HttpResponse:
    return redirect("frontend:pipeline_detail", pipeline_id=pipeline_id)


def run_inputs_page(pipeline: Pipeline) -> HttpResponse:
    """The inputs page of the run's step that holds them, or the run's page when none waits."""
    holder = upload_step(current_steps(pipeline))
    if holder is None:
        return _back(pipeline.pk)
    return redirect("frontend:wizard_inputs", job_id=holder.pk)


@login_required
@require_POST
def submit(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    try:
        services.request_submit_pipeline(user=request.user, pipeline_id=pipeline_id)
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        messages.error(request, f"{exc.user_message} ({exc.code})")
        return _back(pipeline_id)
    messages.success(request, "Submitted: every step goes to SLURM now, as one chain.")
    return _back(pipeline_id)


@login_required
@require_POST
def cancel(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    try:
        _, task_id = services.request_cancel_pipeline(user=request.user, pipeline_id=pipeline_id)
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        messages.error(request, f"{exc.user_message} ({exc.code})")
        return _back(pipeline_id)
    if task_id:
        messages.success(request, "Cancel requested: the queued steps end when SLURM confirms it.")
    else:
        messages.success(request, "The run is cancelled.")
    return _back(pipeline_id)


@login_required
@require_http_methods(["GET", "POST"])
def resume(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    """The values to change, then new jobs from the step that did not complete on; the member goes on to the
    inputs page of the first of them (to replace a file) and submits the run there."""
    pipeline = access_pipeline_to_act(user=request.user, pipeline_id=pipeline_id)
    overview = pipeline_selectors.pipeline_overview(pipeline)
    if request.method == "GET" and not overview.can_resume:
        if overview.is_active:
            messages.error(request, "Wait until every step's results are back. (PIPELINE_BUSY)")
        else:
            messages.error(request, "Only a run with a failed or cancelled step can resume. (PIPELINE_NOT_RESUMABLE)")
        return _back(pipeline.pk)
    form = ResumeForm(
        request.POST if request.method == "POST" else None, questions=pipeline_selectors.resume_questions(pipeline)
    )
    if form.is_bound and form.is_valid():
        values, stage_values = form.resume_values()
        try:
            services.resume_pipeline(
                user=request.user, pipeline_id=pipeline.pk, values=values, stage_values=stage_values
            )
        except (NotFound, Forbidden):
            raise
        except PortalError as exc:
            form.add_portal_error(exc)
        else:
            messages.success(
                request,
                f"Resumed from step {overview.status.current.position if overview.status.current else 1}: replace "
                "any input that needs fixing, then submit the run.",
            )
            return run_inputs_page(pipeline)
    return render(request, "frontend/pipeline_resume.html", {"pipeline": pipeline, "overview": overview, "form": form})


@login_required
@require_POST
def clone(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    """A new run of your own with the same protocol, cluster, values and resources; it opens on its inputs."""
    try:
        copy = services.clone_pipeline(user=request.user, pipeline_id=pipeline_id)
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        messages.error(request, f"{exc.user_message} ({exc.code})")
        return _back(pipeline_id)
    messages.success(request, f"Created “{copy.title}”: upload its inputs.")
    return run_inputs_page(copy)
