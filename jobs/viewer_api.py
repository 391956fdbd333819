"""The 3D view API: a job's molecule and its trajectory frames, served from the portal's store (never SSH).

Open (POST) as the owner; read as anyone who may see the job. Parts come as PDB text, one frame of a part as
little-endian float32 x y z (the part's atoms in its PDB's order), a range of frames as a DCD; each is sent
gzip-encoded to a client that accepts it.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from jobs import services, viewer_selectors
from jobs.access import access_job
from jobs.viewer_schemas import ViewAcceptedOut, ViewOut
from portal.schemas import error_responses

router = Router(tags=["views"])


def _encoded(request: HttpRequest, data: bytes, content_type: str, *, compressed: bool, filename: str) -> HttpResponse:
    """The bytes, gzip-encoded when the client accepts it (`compressed`: they already are)."""
    accepts = "gzip" in request.headers.get("Accept-Encoding", "")
    if accepts:
        body = data if compressed else viewer_selectors.gzip_bytes(data)
    else:
        body = viewer_selectors.gunzip_bytes(data) if compressed else data
    response = HttpResponse(body, content_type=content_type)
    if accepts:
        response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept-Encoding"
    response["Cache-Control"] = "private, no-cache"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


@router.get("/jobs/{int:job_id}/view", response=ViewOut)
def get_view(request: HttpRequest, job_id: int) -> dict[str, Any]:
    """The job's 3D view: its parts, cell, marked atoms and the frames kept (state NONE until it is opened)."""
    job = access_job(user=request.auth, job_id=job_id)
    return viewer_selectors.view_out(job, viewer_selectors.view_of(job))


@router.post("/jobs/{int:job_id}/view", response={202: ViewAcceptedOut, **error_responses(403, 422)})
def open_view(request: HttpRequest, job_id: int, rebuild: bool = False) -> Status:
    """Prepare the view (the owner only: the files are read as the owner); poll GET .../view until READY."""
    view, task_id = services.request_view(user=request.auth, job_id=job_id, rebuild=rebuild)
    return Status(202, {"view": viewer_selectors.view_out(view.job, view), "task_id": task_id})


@router.get("/jobs/{int:job_id}/view/parts/{part}", response={200: None, **error_responses(409, 422)})
def get_view_part(request: HttpRequest, job_id: int, part: str) -> HttpResponse:
    """A part's atoms (solute, ions or water) as PDB text, at the starting coordinates."""
    job = access_job(user=request.auth, job_id=job_id)
    data = viewer_selectors.part_pdb_gzip(job, part)
    return _encoded(request, data, "chemical/x-pdb", compressed=True, filename=f"{part}.pdb")


@router.get("/jobs/{int:job_id}/view/frames/{int:index}", response={200: None, **error_responses(409, 422)})
def get_view_frame(request: HttpRequest, job_id: int, index: int, part: str = "solute") -> HttpResponse:
    """One kept frame of a part: float32 x y z (little-endian) for each of its atoms, in its PDB's order."""
    job = access_job(user=request.auth, job_id=job_id)
    data = viewer_selectors.frame_part(job, index, part)
    return _encoded(request, data, "application/octet-stream", compressed=False, filename=f"{part}-{index}.f32")


@router.get("/jobs/{int:job_id}/view/frames.dcd", response={200: None, **error_responses(409, 422)})
def get_view_frames_dcd(
    request: HttpRequest, job_id: int, part: str = "solute", start: int = 0, stop: int | None = None
) -> HttpResponse:
    """The kept frames [start, stop) of the list, of a part's atoms, as a DCD (VMD, MDAnalysis and NGL read it)."""
    job = access_job(user=request.auth, job_id=job_id)
    data = viewer_selectors.frames_dcd(job, part, start, stop)
    return _encoded(request, data, "application/octet-stream", compressed=False, filename=f"{part}.dcd")
