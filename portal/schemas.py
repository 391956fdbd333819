"""API shapes shared by every app: the error envelope, and the map of error responses an operation documents."""

from __future__ import annotations

from typing import Any

from ninja import Field, Schema


class ErrorBody(Schema):
    code: str = Field(description="Stable, e.g. JOB_NOT_FOUND, INVALID_INPUT, THROTTLED.")
    message: str = Field(description="What happened and what to do next, for a person.")
    details: dict[str, Any] | None = Field(
        default=None, description="Machine-readable facts, e.g. `problems` (field, problem) for INVALID_INPUT."
    )


class ErrorOut(Schema):
    """The one error envelope: `{"error": {"code", "message", "details"?}}`."""

    error: ErrorBody


def error_responses(*statuses: int) -> dict[int, type[ErrorOut]]:
    """`response=` entries for the errors an operation can answer besides the ones every operation documents."""
    return dict.fromkeys(statuses, ErrorOut)
