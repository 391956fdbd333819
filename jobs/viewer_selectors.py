"""Reads of a job's 3D view for pages and the API: what it holds, and its files as the browser and scripts get
them (a part's PDB, one frame of a part as float32 x y z, a range of frames as a DCD). Never touches a cluster.
"""

from __future__ import annotations

import gzip
from array import array
from typing import Any

from django.urls import reverse

from jobs.models import Job, JobView
from jobs.namd_files.dcd import Frame, write_dcd
from jobs.viewer import frame_store
from jobs.viewer.scene import PARTS
from portal.errors import Conflict, InvalidInput, NotFound

NO_VIEW: dict[str, Any] = {"state": "NONE"}


def view_of(job: Job) -> JobView | None:
    return JobView.objects.filter(job=job).first()


def view_out(job: Job, view: JobView | None) -> dict[str, Any]:
    """The view as the API and the page's script read it."""
    if view is None:
        return {**NO_VIEW, "job_id": job.pk}
    base = reverse("api:get_view", kwargs={"job_id": job.pk})
    parts = {part: {**facts, "url": f"{base}/parts/{part}"} for part, facts in view.parts.items() if facts.get("atoms")}
    header = view.trajectory or {}
    return {
        "job_id": job.pk,
        "state": view.state,
        "error_code": view.error_code,
        "error_message": view.error_message,
        "atom_count": view.atom_count,
        "note": view.note,
        "parts": parts,
        "cell": view.cell,
        "restrained": {part: indices for part, indices in (view.restrained or {}).items() if indices},
        "restraint_label": view.restraint_label,
        "trajectory_path": view.trajectory_path,
        "frames_available": view.frames_available,
        "timestep_fs": header.get("timestep_fs"),
        "frames": view.frames,
        "frame_url": f"{base}/frames/{{index}}?part={{part}}",
        "dcd_url": f"{base}/frames.dcd",
        "prepared_at": view.prepared_at,
        "frames_read_at": view.frames_read_at,
        "is_settled": job.is_settled,
    }


def ready_view(job: Job) -> JobView:
    """Raises NotFound (VIEW_NOT_FOUND) without a view, Conflict (VIEW_NOT_READY) while it is prepared or failed."""
    view = view_of(job)
    if view is None:
        raise NotFound("The job has no 3D view yet: open it (POST .../view) first.", code="VIEW_NOT_FOUND")
    if view.state != JobView.State.READY:
        raise Conflict(f"The 3D view is {view.get_state_display().lower()}.", code="VIEW_NOT_READY")
    return view


def _part_range(view: JobView, part: str) -> tuple[int, int]:
    if part not in PARTS or not view.parts.get(part, {}).get("atoms"):
        raise InvalidInput(
            f"The view has no part '{part[:40]}': ask for one of {', '.join(view.parts)}.", code="VIEW_PART_UNKNOWN"
        )
    start = 0
    for name in PARTS:
        atoms = view.parts.get(name, {}).get("atoms", 0)
        if name == part:
            return start, start + atoms
        start += atoms
    raise AssertionError(part)


def part_pdb_gzip(job: Job, part: str) -> bytes:
    """A part's PDB, gzip-compressed as stored. Raises Conflict (VIEW_PART_NOT_READY) while it is written."""
    view = ready_view(job)
    _part_range(view, part)
    if not view.parts[part].get("ready", True):
        raise Conflict(
            f"The {part} of the view is still being written: ask again in a moment.", code="VIEW_PART_NOT_READY"
        )
    return frame_store.part_path(job.uuid, part).read_bytes()


def _stored_frame(view: JobView, index: int) -> dict[str, Any]:
    for frame in view.frames:
        if frame["index"] == index:
            return frame
    raise NotFound(f"The view keeps no frame {index}: see its list of frames.", code="VIEW_FRAME_NOT_FOUND")


def frame_part(job: Job, index: int, part: str) -> bytes:
    """One kept frame of a part: little-endian float32 x y z for each of the part's atoms."""
    view = ready_view(job)
    start, end = _part_range(view, part)
    _stored_frame(view, index)
    return _stored_slice(job, index, start, end)


def _stored_slice(job: Job, index: int, start: int, end: int) -> bytes:
    try:
        return frame_store.frame_slice(job.uuid, index, start, end)
    except FileNotFoundError:
        raise NotFound(
            "The frame was dropped while the trajectory was thinned: read the list again.", code="VIEW_FRAME_NOT_FOUND"
        ) from None


def frames_dcd(job: Job, part: str, start: int, stop: int | None) -> bytes:
    """The kept frames [start, stop) of the list, of a part's atoms (in the part PDB's order), as a DCD."""
    view = ready_view(job)
    first, last = _part_range(view, part)
    chosen = view.frames[start:stop]
    frames = []
    for entry in chosen:
        xyz = array("f")
        xyz.frombytes(_stored_slice(job, entry["index"], first, last))
        cell = tuple(entry["cell"]) if entry.get("cell") else None
        frames.append(Frame(step=entry["step"], cell=cell, xyz=xyz))
    header = view.trajectory or {}
    interval = (chosen[1]["step"] - chosen[0]["step"]) if len(chosen) > 1 else header.get("step_interval", 1)
    return write_dcd(
        frames,
        atoms=last - first,
        step_interval=max(1, interval),
        timestep_fs=header.get("timestep_fs") or 1.0,
        has_cell=any(frame.cell for frame in frames),
    )


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def gunzip_bytes(data: bytes) -> bytes:
    return gzip.decompress(data)
