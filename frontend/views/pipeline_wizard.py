"""The protocol wizard: choose a protocol; fill in the run's cluster, recipe, resources, the values asked once
and each stage's overrides, checked and previewed step by step as you type (every step's config and batch
script, the total cost); create the run; then upload its inputs on the job wizard's inputs page of the run's
first step, whose submit queues the whole run.

Views parse input, make one access, selector or service call and render. The preview creates nothing and
contacts no cluster.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clusters import access as cluster_access
from frontend.pipeline_forms import PipelineForm
from frontend.views.pipelines import run_inputs_page
from frontend.views.wizard import asks_for_resources, resources_section
from jobs import services as job_services
from portal.errors import NotFound, PortalError
from templates_app import selectors as template_selectors
from templates_app.models import Protocol
from templates_app.protocol_questions import protocol_questions


def _offered_protocol(request: HttpRequest, slug: str) -> Protocol:
    """Raises NotFound (PROTOCOL_NOT_FOUND) for a missing, invisible or retired protocol."""
    protocol = template_selectors.offered_protocols(request.user).filter(slug=slug).first()
    if protocol is None:
        raise NotFound("No such protocol.", code="PROTOCOL_NOT_FOUND")
    return protocol


def _pipeline_form(request: HttpRequest, protocol: Protocol, *, data: Any = None, initial: Any = None) -> PipelineForm:
    return PipelineForm(
        data,
        initial=initial,
        profiles=cluster_access.usable_profiles(request.user),
        questions=protocol_questions(protocol),
        check_url=reverse("frontend:pipeline_wizard_check", args=[protocol.slug]),
        sections_url=reverse("frontend:pipeline_wizard_form", args=[protocol.slug]),
    )


@login_required
@require_GET
def choose_protocol(request: HttpRequest) -> HttpResponse:
    return render(
        request, "frontend/pipeline_choose.html", {"entries": template_selectors.protocol_entries(request.user)}
    )


@login_required
@require_http_methods(["GET", "POST"])
def pipeline_form(request: HttpRequest, slug: str) -> HttpResponse:
    """The run's values-and-resources page; POST creates the run and goes on to its inputs.

    An htmx GET aimed at the resources section (the cluster changed) renders that section for the new cluster.
    """
    protocol = _offered_protocol(request, slug)
    if asks_for_resources(request):
        return resources_section(request, _pipeline_form(request, protocol, initial=request.GET.dict()))
    form = _pipeline_form(request, protocol, data=request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            pipeline = job_services.create_pipeline(user=request.user, request=form.pipeline_request(protocol.pk))
        except PortalError as exc:
            form.add_portal_error(exc)
        else:
            return run_inputs_page(pipeline)
    return render(request, "frontend/pipeline_form.html", {"protocol": protocol, "form": form})


@login_required
@require_POST
def check_form(request: HttpRequest, slug: str) -> HttpResponse:
    """Every field's error slot, swapped out of band: what is wrong now, next to its field."""
    form = _pipeline_form(request, _offered_protocol(request, slug), data=request.POST)
    form.is_valid()
    return render(request, "frontend/_wizard_errors.html", {"form": form})


@login_required
@require_POST
def preview(request: HttpRequest, slug: str) -> HttpResponse:
    """Every step's config and batch script and the run's total cost as filled in so far, or why they cannot be
    made, each problem with its code. Creates nothing."""
    protocol = _offered_protocol(request, slug)
    form = _pipeline_form(request, protocol, data=request.POST)
    form.is_valid()
    pipeline_request = form.preview_request(protocol.pk)
    run_preview = None
    if pipeline_request is not None:
        run_preview = job_services.preview_pipeline(user=request.user, request=pipeline_request)
    return render(request, "frontend/_pipeline_preview.html", {"form": form, "preview": run_preview})
