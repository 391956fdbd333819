"""The one NinjaAPI at /api/v1/: authentication, the error envelope, and each app's router.

Every error leaves here as `{"error": {"code", "message", "details"?}}` with a stable code.
"""

from __future__ import annotations

import structlog
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.errors import Throttled as NinjaThrottled
from ninja.security import django_auth

from accounts.api import router as accounts_router
from accounts.auth import ApiTokenAuth
from clusters.api import router as clusters_router
from jobs.api import router as jobs_router
from portal.errors import Forbidden, InvalidInput, NotFound, PortalError, RequestMalformed, Throttled, Unauthenticated
from portal.health import router as health_router
from portal.throttling import OutageTolerantRateThrottle
from templates_app.api import router as templates_router

log = structlog.get_logger(__name__)

api = NinjaAPI(
    title="NAMD portal API",
    version="1",
    description="Create, submit and follow NAMD jobs on SLURM clusters. "
    "Authenticate with a personal access token: `Authorization: Bearer <token>`.",
    auth=[ApiTokenAuth(), django_auth],
    throttle=[OutageTolerantRateThrottle("600/min")],
    urls_namespace="api",
)


def _envelope(request: HttpRequest, error: PortalError) -> HttpResponse:
    return api.create_response(request, error.as_envelope(), status=error.http_status)


@api.exception_handler(PortalError)
def on_portal_error(request: HttpRequest, exc: PortalError) -> HttpResponse:
    return _envelope(request, exc)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _envelope(request, Unauthenticated())


@api.exception_handler(AuthorizationError)
def on_authorization_error(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
    return _envelope(request, Forbidden())


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = [
        {"field": ".".join(str(part) for part in error.get("loc", ())), "problem": error.get("msg", "")}
        for error in exc.errors
    ]
    return _envelope(request, InvalidInput(details={"problems": problems}))


@api.exception_handler(HttpError)
def on_unreadable_body(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own refusal of a body it cannot parse (its 400), in the envelope like every other error."""
    return _envelope(request, RequestMalformed())


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _envelope(request, NotFound())


@api.exception_handler(NinjaThrottled)
def on_throttled(request: HttpRequest, exc: NinjaThrottled) -> HttpResponse:
    return _envelope(request, Throttled())


@api.exception_handler(Exception)
def on_unexpected_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("api_unexpected_error", path=request.path)
    error = PortalError("Something went wrong on our side; it has been logged.", code="INTERNAL_ERROR")
    return api.create_response(request, error.as_envelope(), status=500)


api.add_router("/", health_router)
api.add_router("/", accounts_router)
api.add_router("/", clusters_router)
api.add_router("/", templates_router)
api.add_router("/", jobs_router)
