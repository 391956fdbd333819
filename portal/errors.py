"""The portal's domain errors: a stable code, an HTTP status and a message a person can act on.

Every API endpoint and every htmx response renders these the same way, through the one
envelope `{"error": {"code": ..., "message": ..., "details": ...}}`. Messages never carry
hostnames, tracebacks, raw stderr or secrets.
"""

from __future__ import annotations

from typing import Any


class PortalError(Exception):
    """Base of every error the portal reports to a user."""

    code = "PORTAL_ERROR"
    http_status = 400
    user_message = "The request could not be completed."

    def __init__(
        self,
        user_message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        if user_message is not None:
            self.user_message = user_message
        if code is not None:
            self.code = code
        self.details = details or {}
        super().__init__(self.user_message)

    def as_envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.user_message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class Unauthenticated(PortalError):
    code = "AUTH_REQUIRED"
    http_status = 401
    user_message = "Authentication required: send 'Authorization: Bearer <token>' or log in."


class NotFound(PortalError):
    code = "NOT_FOUND"
    http_status = 404
    user_message = "Not found."


class Forbidden(PortalError):
    code = "FORBIDDEN"
    http_status = 403
    user_message = "You do not have permission to do this."


class InvalidInput(PortalError):
    code = "INVALID_INPUT"
    http_status = 422
    user_message = "The request has invalid values."


class MalformedRequest(InvalidInput):
    code = "MALFORMED_REQUEST"
    http_status = 400
    user_message = "The request body could not be read: send JSON (Content-Type: application/json)."


class Conflict(PortalError):
    code = "CONFLICT"
    http_status = 409
    user_message = "The request conflicts with the current state."


class Throttled(PortalError):
    code = "THROTTLED"
    http_status = 429
    user_message = "Too many requests: wait a moment and try again."


class ClusterUnreachable(PortalError):
    """Transient: the cluster could not be reached now; retrying later may succeed."""

    code = "UNREACHABLE"
    http_status = 503
    user_message = "The cluster could not be reached. The portal will retry; try again later."


class ClusterAuthFailed(PortalError):
    code = "AUTH_FAILED"
    http_status = 502
    user_message = "The cluster refused your credential. Check your cluster username and key or password."


class ClusterHostKeyMismatch(PortalError):
    code = "HOST_KEY_MISMATCH"
    http_status = 502
    user_message = (
        "The cluster's login node presented a host key the portal does not trust. Nothing was sent. "
        "Ask a lab admin to verify the cluster's host key."
    )


class RemoteCommandError(PortalError):
    code = "REMOTE_COMMAND_FAILED"
    http_status = 502
    user_message = "A command on the cluster failed."


class TemplateError(PortalError):
    code = "TEMPLATE_ERROR"
    http_status = 422
    user_message = "The template could not be rendered with these values."
