"""Account pages: personal API tokens (create, shown once; revoke) with htmx."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import access, selectors, services
from frontend.forms import TokenForm
from portal.errors import PortalError


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    issued = None
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.create_api_token(
                user=request.user,
                name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"] or None,
            )
            form = TokenForm()
        except PortalError as exc:
            form.add_error("name", exc.user_message)
    context = {"form": form, "issued": issued, "tokens": selectors.own_api_tokens(request.user)}
    template = "frontend/_tokens_panel.html" if request.htmx else "frontend/tokens.html"
    return render(request, template, context)


@login_required
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    token = services.revoke_api_token(token=access.access_api_token(user=request.user, token_id=token_id))
    return render(request, "frontend/_token_row.html", {"token": token})
