"""The one NinjaAPI at /api/v1/: authentication, the error envelope, and each app's router.

Every error leaves here as `{"error": {"code", "message", "details"?}}` with a stable code, and every
operation documents the errors it can answer with that envelope (`ErrorOut`): each one 422 (validation, or
input PostgreSQL cannot store) and 429; one behind authentication 401, and 403 if it writes (a session's
CSRF check); one with a path parameter 404; one with a body 400 (MALFORMED_REQUEST). Other errors a route
can answer (409, 413) it lists itself with `portal.schemas.error_responses`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Router
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.errors import Throttled as NinjaThrottled
from ninja.params.models import BodyModel
from ninja.security import django_auth

from accounting.api import router as usage_router
from accounts.access import access_api_token
from accounts.api import router as accounts_router
from accounts.auth import ApiTokenAuth
from clusters.access import access_profile
from clusters.api import router as clusters_router
from jobs.access import access_job, access_sweep
from jobs.api import router as jobs_router
from jobs.pipeline_api import router as pipelines_router
from jobs.sweep_api import router as sweeps_router
from jobs.viewer_api import router as views_router
from notifications.api import router as notifications_router
from portal.errors import (
    Forbidden,
    InvalidInput,
    MalformedRequest,
    NotFound,
    PortalError,
    Throttled,
    Unauthenticated,
)
from portal.health import router as health_router
from portal.schemas import ErrorOut
from portal.throttling import OutageTolerantRateThrottle
from templates_app.access import access_protocol, access_template
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


# The owned object each path parameter names, loaded for the caller: NotFound if they may not see it.
OBJECT_ACCESS: dict[str, Callable[[Any, int], object]] = {
    "job_id": lambda user, job_id: access_job(user=user, job_id=job_id),
    "sweep_id": lambda user, sweep_id: access_sweep(user=user, sweep_id=sweep_id),
    "profile_id": lambda user, profile_id: access_profile(user=user, profile_id=profile_id),
    "template_id": lambda user, template_id: access_template(user=user, template_id=template_id),
    "protocol_id": lambda user, protocol_id: access_protocol(user=user, protocol_id=protocol_id),
    "token_id": lambda user, token_id: access_api_token(user=user, token_id=token_id),
}


def check_object_access(request: HttpRequest) -> None:
    """Load the objects the path names, for the caller. Raises NotFound (e.g. JOB_NOT_FOUND) for one they may
    not see, so that a bad body or query on another member's job answers 404, as a good one does."""
    user = getattr(request, "auth", None)
    match = request.resolver_match
    if user is None or match is None:
        return
    for name, value in match.kwargs.items():
        if name in OBJECT_ACCESS and isinstance(value, int):
            OBJECT_ACCESS[name](user, value)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    check_object_access(request)
    problems = [
        {"field": ".".join(str(part) for part in error.get("loc", ())), "problem": error.get("msg", "")}
        for error in exc.errors
    ]
    return _envelope(request, InvalidInput(details={"problems": problems}))


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own refusals: a body it cannot parse (400), a session's failed CSRF check (403)."""
    if exc.status_code == 403:
        return _envelope(request, Forbidden("The CSRF check failed: reload the page, or use a token."))
    if exc.status_code == 400:
        check_object_access(request)
        return _envelope(request, MalformedRequest())
    error = PortalError(str(exc), code="REQUEST_REFUSED")
    return api.create_response(request, error.as_envelope(), status=exc.status_code)


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


@csrf_exempt  # it changes nothing, whatever the method
def api_not_found(request: HttpRequest, unmatched: str = "") -> HttpResponse:
    """Any other path under /api/v1/ (e.g. a non-numeric id): NOT_FOUND in the envelope, not the 404 page."""
    return _envelope(request, NotFound("No such API endpoint: see /api/v1/docs.", code="ENDPOINT_NOT_FOUND"))


WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def document_errors(router: Router) -> None:
    """Add the error responses every operation of `router` can answer (see the module docstring) to its schema."""
    for path, path_view in router.path_operations.items():
        for operation in path_view.operations:
            statuses = {422, 429}
            if operation.auth_param is not None:
                statuses.add(401)
                if WRITE_METHODS & set(operation.methods):
                    statuses.add(403)
            if "{" in path:
                statuses.add(404)
            if any(issubclass(model, BodyModel) for model in operation.models):
                statuses.add(400)
            for status in sorted(statuses):
                # ninja wraps each response model the same way when it reads `response=`.
                operation.response_models.setdefault(status, operation._create_response_model(ErrorOut))


for router in (
    health_router,
    accounts_router,
    clusters_router,
    templates_router,
    jobs_router,
    pipelines_router,
    sweeps_router,
    views_router,
    usage_router,
    notifications_router,
):
    document_errors(router)
    api.add_router("/", router)
