"""Request-scoped logging context, the pages' Content-Security-Policy, the one renderer of PortalError, and the
refusal of input PostgreSQL cannot store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import structlog
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render

from portal.errors import InvalidInput, PortalError
from portal.storable_text import PROBLEM, unstorable_fields

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
        return portal_error_response(request, exc)


def portal_error_response(request: HttpRequest, exc: PortalError) -> HttpResponse:
    """The JSON envelope for the API and htmx, the error page otherwise."""
    log.info("portal_error", code=exc.code, path=request.path)
    if request.path.startswith("/api/") or request.headers.get("HX-Request") == "true":
        return JsonResponse(exc.as_envelope(), status=exc.http_status)
    return render(request, "frontend/error.html", {"error": exc}, status=exc.http_status)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Bodies Django refuses to read or parse are left to the view, which refuses them as before.
UNREADABLE_BODY = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent, MultiPartParserError)


def _json_body(request: HttpRequest) -> object:
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None  # not JSON: the API answers MALFORMED_REQUEST


def _querydict_fields(data: QueryDict, where: str) -> list[str]:
    pairs = ((key, value) for key, values in data.lists() for value in values)
    return [label for key, value in pairs for label in unstorable_fields({key: value}, where)]


def unstorable_input(request: HttpRequest) -> list[str]:
    """Where the request carries text PostgreSQL cannot store: its path, query string, form fields or JSON body."""
    found = unstorable_fields(request.path_info, "path") + _querydict_fields(request.GET, "query")
    try:
        if request.content_type == "application/json" or request.content_type.endswith("+json"):
            found += unstorable_fields(_json_body(request), "body")
        elif request.method == "POST" and request.content_type in FORM_TYPES:
            # Uploaded file names need no check: Django's multipart parser drops unprintable characters.
            found += _querydict_fields(request.POST, "form")
    except UNREADABLE_BODY:
        pass
    return found


class UnstorableInputMiddleware:
    """Refuse, before any view, a request whose input PostgreSQL cannot store (INVALID_INPUT, 422).

    One place for the API, the pages and htmx: a NUL would otherwise be a 500 wherever it reaches a query.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        fields = unstorable_input(request)
        if fields:
            problems = [{"field": field, "problem": PROBLEM} for field in dict.fromkeys(fields)]
            error = InvalidInput(
                "Remove the NUL characters or invalid Unicode from your input and send it again.",
                details={"problems": problems},
            )
            return portal_error_response(request, error)
        return self.get_response(request)


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
