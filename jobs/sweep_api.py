"""API endpoints for sweeps. Each parses input, makes one access/selector/service call and returns.

A sweep's inputs are uploaded to one job (`inputs_job_id`, through the jobs API); actions answer 202.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status

from jobs import services, sweep_selectors
from jobs.access import access_sweep
from jobs.models import Sweep
from jobs.sweep_points import SweepAxis
from jobs.sweep_schemas import (
    SweepAcceptedOut,
    SweepCreateIn,
    SweepDetailOut,
    SweepPage,
    SweepPlotOut,
)
from portal.schemas import error_responses

router = Router(tags=["sweeps"])
MAX_PAGE_SIZE = 200
MAX_PAGE = 1_000_000
CSV_RESPONSE = {"responses": {200: {"description": "The rows as CSV.", "content": {"text/csv": {}}}}}


def _sweep_out(sweep: Sweep, points: int | None = None) -> dict[str, Any]:
    version = sweep.template_version
    return {
        "id": sweep.pk,
        "uuid": str(sweep.uuid),
        "title": sweep.title,
        "owner": sweep.owner.username,
        "cluster_id": sweep.profile_id,
        "cluster": sweep.profile.slug,
        "kind": "template" if version is not None else "protocol",
        "template": version.template.slug if version is not None else None,
        "template_version": version.number if version is not None else None,
        "protocol": sweep.protocol.slug if sweep.protocol is not None else None,
        "mode": sweep.mode,
        "axes": sweep.axes,
        "max_running": sweep.max_running,
        "points": points if points is not None else getattr(sweep, "point_count", None) or sweep.points.count(),
        "created_at": sweep.created_at,
        "cancel_requested_at": sweep.cancel_requested_at,
    }


def _detail(sweep: Sweep) -> dict[str, Any]:
    rows = sweep_selectors.sweep_rows(sweep)
    return {
        **_sweep_out(sweep, points=len(rows)),
        "inputs_job_id": sweep_selectors.inputs_job_id(sweep),
        "summary": sweep_selectors.sweep_summary(rows),
        "rows": rows,
    }


def _accepted(sweep_id: int, task_id: str, user: Any) -> Status:
    return Status(202, {"sweep": _sweep_out(access_sweep(user=user, sweep_id=sweep_id)), "task_id": task_id})


@router.post("/sweeps", response={201: SweepDetailOut, **error_responses(404, 409)})
def create_sweep(request: HttpRequest, payload: SweepCreateIn) -> Status:
    """A sweep of DRAFT points; upload its inputs to `inputs_job_id`, then POST /sweeps/{id}/submit (or create
    it with `submit`). Every point is rendered first: a refusal names the point (`details.point`)."""
    sweep = services.create_sweep(
        user=request.auth,
        request=services.SweepRequest(
            template_id=payload.template_id,
            protocol_id=payload.protocol_id,
            cluster_id=payload.cluster_id,
            recipe=payload.recipe,
            title=payload.title,
            mode=payload.mode,
            axes=tuple(SweepAxis(axis.name, tuple(axis.values)) for axis in payload.axes),
            values=payload.values,
            stage_values=payload.stage_values,
            resources=payload.resources.as_resources(),
            replicas=payload.replicas,
            base_seed=payload.base_seed,
            max_running=payload.max_running,
            submit=payload.submit,
        ),
    )
    return Status(201, _detail(access_sweep(user=request.auth, sweep_id=sweep.pk)))


@router.get("/sweeps", response=SweepPage)
def list_sweeps(
    request: HttpRequest,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    page_size: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
) -> dict[str, Any]:
    """Your sweeps (every sweep for a lab admin), newest first."""
    sweeps = sweep_selectors.sweep_list(request.auth)
    start = (page - 1) * page_size
    items = [_sweep_out(sweep) for sweep in sweeps[start : start + page_size]]
    return {"items": items, "count": sweeps.count(), "page": page, "page_size": page_size}


@router.get("/sweeps/{int:sweep_id}", response=SweepDetailOut)
def get_sweep(request: HttpRequest, sweep_id: int) -> dict[str, Any]:
    """The sweep and one row per point: state, stage, last step, ns/day, final energies, the job or run."""
    return _detail(access_sweep(user=request.auth, sweep_id=sweep_id))


@router.get("/sweeps/{int:sweep_id}/csv", response={200: None}, openapi_extra=CSV_RESPONSE)
def sweep_csv(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """The rows as CSV (one column per swept variable)."""
    sweep = access_sweep(user=request.auth, sweep_id=sweep_id)
    response = HttpResponse(
        sweep_selectors.sweep_csv(sweep, sweep_selectors.sweep_rows(sweep)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="sweep-{sweep.pk}.csv"'
    return response


@router.get("/sweeps/{int:sweep_id}/plot", response=SweepPlotOut)
def sweep_plot(request: HttpRequest, sweep_id: int, figure: str = "total_energy", axis: str | None = None) -> Any:
    """A figure of every point (total_energy, potential_energy, kinetic_energy, temperature, mean_temperature,
    ns_per_day, last_step) against a swept variable (`axis`, default the first): one series per combination
    of the other swept variables."""
    sweep = access_sweep(user=request.auth, sweep_id=sweep_id)
    return sweep_selectors.sweep_plot(sweep, sweep_selectors.sweep_rows(sweep), figure=figure, axis=axis)


@router.post("/sweeps/{int:sweep_id}/submit", response={202: SweepAcceptedOut, **error_responses(409)})
def submit_sweep(request: HttpRequest, sweep_id: int) -> Status:
    """Submit every point not yet submitted: at most `max_running` at once, the next whenever one settles."""
    sweep, task_id = services.request_submit_sweep(user=request.auth, sweep_id=sweep_id)
    return _accepted(sweep.pk, task_id, request.auth)


@router.post("/sweeps/{int:sweep_id}/cancel", response={202: SweepAcceptedOut, **error_responses(409)})
def cancel_sweep(request: HttpRequest, sweep_id: int) -> Status:
    """Cancel every point: at once before submission, otherwise one scancel for all (states follow SLURM)."""
    sweep, task_id = services.request_cancel_sweep(user=request.auth, sweep_id=sweep_id)
    return _accepted(sweep.pk, task_id, request.auth)


@router.post("/sweeps/{int:sweep_id}/retry-failed", response={202: SweepAcceptedOut, **error_responses(409)})
def retry_failed(request: HttpRequest, sweep_id: int) -> Status:
    """Run again every point that ended without completing (a new job, or the run resumed from its failed step),
    through the gate."""
    sweep, task_id = services.retry_failed_points(user=request.auth, sweep_id=sweep_id)
    return _accepted(sweep.pk, task_id, request.auth)
