"""The new-job wizard: choose a template; fill in its values and the resources, checked and previewed as you
type; create the draft; upload its inputs (chunked and resumable, by upload.js against the jobs API); submit.
The inputs page also serves a pipeline run: on its first waiting step it takes the run's inputs, and its
submit queues the whole run (the submit service routes a step to its run).

Views parse input, make one access, selector or service call and render. Nothing here talks to a cluster:
inputs are copied by tasks, and the inputs status polls while any copy is under way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounting.budgets import estimate_outlook
from clusters import access as cluster_access
from clusters import selectors as cluster_selectors
from frontend.wizard_forms import JobForm, SubmitWhenReadyForm
from jobs import services as job_services
from jobs import sweep_selectors
from jobs.access import access_job, access_job_to_act
from jobs.models import EDITABLE_STATES, InputFile, Job, JobState
from jobs.services.uploads import CLIENT_CHUNK_BYTES
from portal.errors import Forbidden, NotFound, PortalError
from templates_app import selectors as template_selectors
from templates_app import services as template_services
from templates_app.models import Template, TemplateVersion
from templates_app.specs import specs_from_json

RESOURCES_SECTION_ID = "wizard-resources"
RESOURCES_CHANGED_EVENT = "wizard-resources-changed"  # the preview re-renders once the new section is in
COPYING_STATES = frozenset({InputFile.State.RECEIVED, InputFile.State.UPLOADING})


def _offered_template(request: HttpRequest, slug: str) -> tuple[Template, TemplateVersion]:
    """Raises NotFound (TEMPLATE_NOT_FOUND) for a missing, invisible or retired template."""
    template = template_selectors.offered_templates(request.user).filter(slug=slug).first()
    if template is None:
        raise NotFound("No such template.", code="TEMPLATE_NOT_FOUND")
    return template, template_selectors.latest_version(template)


def _job_form(request: HttpRequest, version: TemplateVersion, *, data: Any = None, initial: Any = None) -> JobForm:
    slug = version.template.slug
    return JobForm(
        data,
        initial=initial,
        profiles=cluster_access.usable_profiles(request.user),
        specs=specs_from_json(version.variables),
        check_url=reverse("frontend:wizard_check", args=[slug]),
        sections_url=reverse("frontend:wizard_form", args=[slug]),
    )


def asks_for_resources(request: HttpRequest) -> bool:
    """An htmx GET aimed at the resources section: the member chose another cluster."""
    return request.method == "GET" and bool(request.htmx) and request.htmx.target == RESOURCES_SECTION_ID


def resources_section(request: HttpRequest, form: JobForm) -> HttpResponse:
    """The resources section alone, for the cluster the form now names; the preview renders again once it is in."""
    response = render(request, "frontend/_wizard_resources.html", {"form": form})
    response["HX-Trigger-After-Settle"] = RESOURCES_CHANGED_EVENT
    return response


@login_required
@require_GET
def choose_template(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/wizard_choose.html", {"groups": template_selectors.catalogue_groups(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def job_form(request: HttpRequest, slug: str) -> HttpResponse:
    """The values-and-resources page; POST creates the DRAFT job and goes on to its inputs.

    An htmx GET aimed at the resources section (the cluster changed) renders that section for the new cluster.
    """
    template, version = _offered_template(request, slug)
    if asks_for_resources(request):
        return resources_section(request, _job_form(request, version, initial=request.GET.dict()))
    form = _job_form(request, version, data=request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            job = job_services.create_job(user=request.user, request=form.job_request(template.pk))
        except PortalError as exc:
            form.add_portal_error(exc)
        else:
            return redirect("frontend:wizard_inputs", job_id=job.pk)
    return render(request, "frontend/wizard_form.html", {"template": template, "version": version, "form": form})


@login_required
@require_POST
def check_form(request: HttpRequest, slug: str) -> HttpResponse:
    """Every field's error slot, swapped out of band: what is wrong now, next to its field."""
    _, version = _offered_template(request, slug)
    form = _job_form(request, version, data=request.POST)
    form.is_valid()
    return render(request, "frontend/_wizard_errors.html", {"form": form})


@login_required
@require_POST
def preview(request: HttpRequest, slug: str) -> HttpResponse:
    """The NAMD config, the batch script and the cost of the job as filled in so far, or why they cannot be made."""
    template, version = _offered_template(request, slug)
    form = _job_form(request, version, data=request.POST)
    form.is_valid()
    arguments = form.preview_arguments(default_title=template.name)
    job_preview, budget = None, []
    if arguments is not None:
        login = cluster_selectors.remote_username(user=request.user, profile=arguments["profile"])
        job_preview = template_services.preview_job(version=version, remote_username=login, **arguments)
        budget = estimate_outlook(
            member_id=request.user.pk,
            account=arguments["resources"].account,
            estimate_su=job_preview.cost.service_units if job_preview.cost else None,
        )
    context = {"form": form, "preview": job_preview, "budget": budget}
    return render(request, "frontend/_wizard_preview.html", context)


@dataclass(frozen=True)
class InputRow:
    """One file of a job: one the config reads (maybe not uploaded yet) or another one uploaded."""

    name: str
    role: str
    input_file: InputFile | None

    @property
    def is_copying(self) -> bool:
        return self.input_file is not None and self.input_file.state in COPYING_STATES


def _input_rows(job: Job) -> list[InputRow]:
    uploaded = {input_file.name: input_file for input_file in job.inputs.all()}
    expected = job_services.job_roles(job)
    rows = [InputRow(name, role, uploaded.get(name)) for name, role in expected.items()]
    return rows + [InputRow(name, f.role, f) for name, f in uploaded.items() if name not in expected]


def _is_unpacking(job: Job) -> bool:
    """An archive was received and its unpacking has not ended yet."""
    last = job.events.filter(kind__startswith="ARCHIVE_").order_by("-created_at", "-pk").first()
    return last is not None and last.kind == "ARCHIVE_RECEIVED"


def _inputs_context(job: Job) -> dict[str, Any]:
    rows = _input_rows(job)
    unpacking = _is_unpacking(job)
    point = sweep_selectors.sweep_point_of(job.owner, job_id=job.pk, pipeline_id=job.pipeline_id)
    return {
        "job": job,
        "pipeline": job.pipeline if job.pipeline_id else None,  # a run's first waiting step holds the run's inputs
        "sweep": point.sweep if point is not None else None,  # a sweep's first point holds the sweep's inputs
        "rows": rows,
        "is_editable": job.state in EDITABLE_STATES,
        "is_unpacking": unpacking,
        "is_copying": unpacking or any(row.is_copying for row in rows),
        "is_ready": job.state == JobState.READY,
        "problems": job_services.input_problems(job) if job.state in EDITABLE_STATES else [],
        "archive_refusal": job.error_message if job.error_code.startswith("ARCHIVE_") else "",
        "suggested": job_services.suggested_values(job) if job.state in EDITABLE_STATES else {},
        "warnings": job_services.input_warnings(job) if job.state in EDITABLE_STATES else [],
    }


@login_required
@require_http_methods(["GET", "POST"])
def inputs(request: HttpRequest, job_id: int) -> HttpResponse:
    """The upload step; POST sets "submit automatically when the inputs are ready"."""
    if request.method == "POST":
        return _set_submit_when_ready(request, job_id)
    job = access_job_to_act(user=request.user, job_id=job_id)  # the upload step: the owner's only
    context = {
        **upload_context(job),
        "auto_form": SubmitWhenReadyForm(initial={"submit_when_ready": job.submit_when_ready}),
    }
    return render(request, "frontend/wizard_inputs.html", context)


def upload_context(job: Job) -> dict[str, Any]:
    """What the upload section and the inputs status need, for a job its owner uploads to (the inputs page, and
    a sweep's page for the job that holds the sweep's inputs)."""
    return {
        **_inputs_context(job),
        "expected": _expected(job),
        "chunk_bytes": CLIENT_CHUNK_BYTES,
        "upload_url": reverse("api:get_upload", kwargs={"job_id": job.pk, "name": "__name__"}),
        "archive_url": reverse("api:upload_archive", kwargs={"job_id": job.pk}),
    }


def _expected(job: Job) -> list[dict[str, Any]]:
    """The files the config reads, with the line that reads them; those the template ships are marked."""
    shipped = set(job.inputs.filter(is_template_asset=True).values_list("name", flat=True))
    return [
        {"path": read.path, "keyword": read.keyword, "line": read.line, "shipped": read.path in shipped}
        for read in job_services.job_reads(job)
    ]


def _set_submit_when_ready(request: HttpRequest, job_id: int) -> HttpResponse:
    form = SubmitWhenReadyForm(request.POST)
    form.is_valid()
    enabled = bool(form.cleaned_data.get("submit_when_ready"))
    try:
        job, task_id = job_services.set_submit_when_ready(user=request.user, job_id=job_id, enabled=enabled)
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        messages.error(request, f"{exc.user_message} ({exc.code})")
        return redirect("frontend:wizard_inputs", job_id=job_id)
    if task_id:
        messages.success(request, "The inputs are ready: the job is being submitted.")
        return _submitted_page(job)
    if enabled:
        messages.success(request, "It will be submitted once the inputs are ready.")
    else:
        messages.success(request, "Automatic submission is off: submit it yourself once the inputs are ready.")
    return redirect("frontend:wizard_inputs", job_id=job.pk)


@login_required
@require_POST
def use_input_values(request: HttpRequest, job_id: int) -> HttpResponse:
    """Take the values the uploaded files say (cell, first step) as the job's own."""
    job = access_job_to_act(user=request.user, job_id=job_id)
    suggested = job_services.suggested_values(job)
    try:
        job_services.update_job_values(user=request.user, job_id=job.pk, values=suggested)
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        messages.error(request, f"{exc.user_message} ({exc.code})")
        return redirect("frontend:wizard_inputs", job_id=job_id)
    shown = ", ".join(f"{name} = {value}" for name, value in suggested.items())
    messages.success(request, f"The job now uses what its files say: {shown}.")
    return redirect("frontend:wizard_inputs", job_id=job_id)


@login_required
@require_GET
def inputs_status(request: HttpRequest, job_id: int) -> HttpResponse:
    """Each input's state and the job's readiness; polls itself while an input is being copied."""
    job = access_job(user=request.user, job_id=job_id)
    return render(request, "frontend/_wizard_inputs_status.html", _inputs_context(job))


@login_required
@require_POST
def submit(request: HttpRequest, job_id: int) -> HttpResponse:
    try:
        job, _ = job_services.request_submit(user=request.user, job_id=job_id)
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        messages.error(request, f"{exc.user_message} ({exc.code})")
        return redirect("frontend:wizard_inputs", job_id=job_id)
    if job.pipeline_id is not None:
        messages.success(request, "Submitted: every step of the run goes to SLURM now, as one chain.")
    else:
        messages.success(request, "Submitted: the job goes to SLURM now.")
    return _submitted_page(job)


def _submitted_page(job: Job) -> HttpResponse:
    """Where a submitted job is followed: its page, or its run's for a pipeline step (the submit queued the run)."""
    if job.pipeline_id is not None:
        return redirect("frontend:pipeline_detail", pipeline_id=job.pipeline_id)
    return redirect("frontend:job_detail", job_id=job.pk)
