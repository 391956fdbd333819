"""The templates catalogue: the templates members can start a job from, each with its variables and an
example config rendered with the defaults, and the protocols they can start a pipeline run of. Read-only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from templates_app import selectors


@login_required
@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    context = {
        "groups": selectors.catalogue_groups(request.user),
        "protocols": selectors.protocol_entries(request.user),
    }
    return render(request, "frontend/catalogue.html", context)


@login_required
@require_GET
def template_detail(request: HttpRequest, slug: str) -> HttpResponse:
    detail = selectors.catalogue_detail(user=request.user, slug=slug)
    return render(request, "frontend/catalogue_detail.html", {"detail": detail})
