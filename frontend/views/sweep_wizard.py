"""The sweep wizard: a template's or a protocol's wizard run as a sweep. Choose what to sweep; fill in the job
wizard's (or the protocol wizard's) fields and the sweep's (mode, swept variables and their values, replicas and
base seed, how many at once), checked as you type; the preview renders the first point and says how many points
there are and what they cost together; create the sweep, then upload its inputs once on the sweep's page.

Views parse input, make one access, selector or service call and render. The preview creates nothing and
contacts no cluster.
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

from clusters import access as cluster_access
from frontend.sweep_forms import ProtocolSweepForm, TemplateSweepForm
from frontend.views.wizard import asks_for_resources, resources_section
from jobs import services as job_services
from portal.errors import NotFound, PortalError
from templates_app import selectors as template_selectors
from templates_app.protocol_questions import protocol_questions
from templates_app.specs import specs_from_json

AXES_SECTION_ID = "sweep-axes"
TEMPLATE, PROTOCOL = "template", "protocol"


@dataclass(frozen=True)
class SweepSubject:
    """What a sweep runs, as offered to the member: a template (its latest version) or a protocol."""

    kind: str  # TEMPLATE or PROTOCOL
    pk: int
    slug: str
    name: str
    description: str
    template: Any = None  # the Template, with `version` its latest
    version: Any = None
    protocol: Any = None


def _subject(request: HttpRequest, kind: str, slug: str) -> SweepSubject:
    """Raises NotFound (TEMPLATE_NOT_FOUND, PROTOCOL_NOT_FOUND) for a missing, invisible or retired one."""
    if kind == TEMPLATE:
        template = template_selectors.offered_templates(request.user).filter(slug=slug).first()
        if template is None:
            raise NotFound("No such template.", code="TEMPLATE_NOT_FOUND")
        version = template_selectors.latest_version(template)
        return SweepSubject(kind, template.pk, slug, template.name, template.description, template, version)
    protocol = template_selectors.offered_protocols(request.user).filter(slug=slug).first()
    if protocol is None:
        raise NotFound("No such protocol.", code="PROTOCOL_NOT_FOUND")
    return SweepSubject(kind, protocol.pk, slug, protocol.name, protocol.description, protocol=protocol)


def _sweep_form(
    request: HttpRequest, subject: SweepSubject, *, data: Any = None, initial: Any = None, add_axis: bool = False
) -> TemplateSweepForm | ProtocolSweepForm:
    urls = {
        "check_url": reverse("frontend:sweep_wizard_check", args=[subject.kind, subject.slug]),
        "sections_url": reverse("frontend:sweep_wizard_form", args=[subject.kind, subject.slug]),
    }
    profiles = cluster_access.usable_profiles(request.user)
    if subject.kind == TEMPLATE:
        specs = specs_from_json(subject.version.variables)
        return TemplateSweepForm(data, initial=initial, profiles=profiles, specs=specs, add_axis=add_axis, **urls)
    questions = protocol_questions(subject.protocol)
    return ProtocolSweepForm(data, initial=initial, profiles=profiles, questions=questions, add_axis=add_axis, **urls)


@login_required
@require_GET
def choose(request: HttpRequest) -> HttpResponse:
    """The templates and protocols a member may sweep."""
    context = {
        "groups": template_selectors.catalogue_groups(request.user),
        "protocols": template_selectors.protocol_entries(request.user),
    }
    return render(request, "frontend/sweep_choose.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def sweep_form(request: HttpRequest, kind: str, slug: str) -> HttpResponse:
    """The sweep's page of values, resources and points; POST creates it and goes on to its page, where its
    inputs are uploaded. An htmx GET aimed at the resources section (the cluster changed) renders that section;
    one aimed at the axes section ("Add a variable") renders it with one more row."""
    subject = _subject(request, kind, slug)
    if asks_for_resources(request):
        return resources_section(request, _sweep_form(request, subject, initial=request.GET.dict()))
    if request.method == "GET" and request.htmx and request.htmx.target == AXES_SECTION_ID:
        form = _sweep_form(request, subject, initial=request.GET.dict(), add_axis=True)
        return render(request, "frontend/_sweep_axes.html", {"subject": subject, "form": form})
    form = _sweep_form(request, subject, data=request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            sweep = job_services.create_sweep(user=request.user, request=form.sweep_request(subject.pk))
        except PortalError as exc:
            form.add_portal_error(exc)
        else:
            messages.success(request, f"Created the sweep “{sweep.title}”: upload its inputs once, here.")
            return redirect("frontend:sweep_detail", sweep_id=sweep.pk)
    return render(request, "frontend/sweep_form.html", {"subject": subject, "form": form})


@login_required
@require_POST
def check_form(request: HttpRequest, kind: str, slug: str) -> HttpResponse:
    """Every field's error slot, swapped out of band: what is wrong now, next to its field."""
    form = _sweep_form(request, _subject(request, kind, slug), data=request.POST)
    form.is_valid()
    return render(request, "frontend/_wizard_errors.html", {"form": form})


@login_required
@require_POST
def preview(request: HttpRequest, kind: str, slug: str) -> HttpResponse:
    """The first point's config and batch script (every step's, for a protocol), how many points, and the cost
    of them all, as filled in so far; or why they cannot be made, each problem with its code. Creates nothing."""
    subject = _subject(request, kind, slug)
    form = _sweep_form(request, subject, data=request.POST)
    form.is_valid()
    sweep_request = form.preview_request(subject.pk)
    sweep_preview = None
    if sweep_request is not None:
        sweep_preview = job_services.preview_sweep(user=request.user, request=sweep_request)
    return render(request, "frontend/_sweep_preview.html", {"form": form, "preview": sweep_preview})
