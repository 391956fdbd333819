"""Request-scoped logging context, the pages' Content-Security-Policy, and the one renderer of PortalError."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from portal.errors import PortalError

log = structlog.get_logger(__name__)


class RequestContextMiddleware:
    """Bind request_id and user_id to every log line written while serving a request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id[:64])
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            structlog.contextvars.bind_contextvars(user_id=user.pk)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id[:64]
        return response


class PortalErrorMiddleware:
    """Render a PortalError raised by a page view: the JSON envelope for htmx, a page otherwise."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, PortalError):
            return None
        log.info("portal_error", code=exc.code, path=request.path)
        if getattr(request, "htmx", False):
            return JsonResponse(exc.as_envelope(), status=exc.http_status)
        return render(request, "frontend/error.html", {"error": exc}, status=exc.http_status)


# Pages load only the portal's own files: scripts and styles are static files, never inline.
PAGE_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Django's admin and ninja's API docs page carry inline scripts of their own.
CSP_EXEMPT_PREFIXES = ("/admin/", "/api/")


class ContentSecurityPolicyMiddleware:
    """Send PAGE_CSP with every page outside the admin and the API docs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(CSP_EXEMPT_PREFIXES):
            response.setdefault("Content-Security-Policy", PAGE_CSP)
        return response
