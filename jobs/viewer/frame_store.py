"""The 3D view's files in the portal's file store: `<FILE_STORE>/viewer/<job uuid>/` holds each part's PDB
(gzip), the view's atom order, and the frames kept of the trajectory, one file each in the view's order.

A frame is stored as float32 x y z per shown atom, rounded to 1/64 Å (0.016 Å, far below what a view can
show): the rounding leaves the low bits of every number zero, which is what lets a frame compress to about
half on its way to the browser. Which frames are kept is `kept_frames`: every stride-th from the first and
always the newest, the stride doubling until they fit the job's frame and byte bounds, so a long trajectory
is thinned evenly and a running job always shows where it is now. Files are written whole (temp + rename).
Knows nothing of Django models or the cluster.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import struct
import sys
import tempfile
import uuid
from array import array
from pathlib import Path

from django.conf import settings

from jobs.namd_files.dcd import Frame

ROUNDING = 64.0  # coordinates kept to 1/64 Å
CELL_BYTES = 24  # a stored frame starts with its cell: 6 float32


def view_dir(job_uuid: uuid.UUID) -> Path:
    return Path(settings.FILE_STORE) / "viewer" / job_uuid.hex


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
    os.replace(temp, path)


def part_path(job_uuid: uuid.UUID, part: str) -> Path:
    return view_dir(job_uuid) / f"{part}.pdb.gz"


def write_part(job_uuid: uuid.UUID, part: str, pdb: bytes) -> int:
    """Store a part's PDB, gzip-compressed; its compressed size."""
    data = gzip.compress(pdb, compresslevel=6, mtime=0)
    _write(part_path(job_uuid, part), data)
    return len(data)


def write_order(job_uuid: uuid.UUID, order: array) -> None:
    _write(view_dir(job_uuid) / "order.i32", _little(order))


def read_order(job_uuid: uuid.UUID) -> array:
    return _from_little("i", (view_dir(job_uuid) / "order.i32").read_bytes())


def frame_path(job_uuid: uuid.UUID, index: int) -> Path:
    return view_dir(job_uuid) / "frames" / f"{index:08d}.f32"


def view_coordinates(frame: Frame, order: array) -> array:
    """A trajectory frame's coordinates in the view's order, rounded to 1/64 Å."""
    xyz = frame.xyz
    out = array("f", bytes(12 * len(order)))
    for axis in range(3):
        values = xyz[axis::3]
        out[axis::3] = array("f", [round(values[j] * ROUNDING) / ROUNDING for j in order])
    return out


def store_frame(job_uuid: uuid.UUID, index: int, cell: tuple[float, ...] | None, coordinates: array) -> None:
    """A frame's file: its cell (a, b, c, alpha, beta, gamma as float32, NaN without one), then x y z."""
    _write(frame_path(job_uuid, index), struct.pack("<6f", *(cell or (math.nan,) * 6)) + _little(coordinates))


def frame_cell(job_uuid: uuid.UUID, index: int) -> list[float] | None:
    with frame_path(job_uuid, index).open("rb") as stream:
        cell = struct.unpack("<6f", stream.read(CELL_BYTES))
    return None if math.isnan(cell[0]) else [round(value, 4) for value in cell]


def frame_slice(job_uuid: uuid.UUID, index: int, start: int, end: int) -> bytes:
    """The little-endian float32 x y z of the view's atoms start..end-1 in a stored frame."""
    with frame_path(job_uuid, index).open("rb") as stream:
        stream.seek(CELL_BYTES + 12 * start)
        return stream.read(12 * (end - start))


def stored_frames(job_uuid: uuid.UUID) -> set[int]:
    folder = view_dir(job_uuid) / "frames"
    return {int(path.stem) for path in folder.glob("*.f32")} if folder.is_dir() else set()


def drop_frames(job_uuid: uuid.UUID, indices: set[int]) -> None:
    for index in indices:
        frame_path(job_uuid, index).unlink(missing_ok=True)


def remove_view(job_uuid: uuid.UUID) -> None:
    shutil.rmtree(view_dir(job_uuid), ignore_errors=True)


def kept_frames(available: int, *, max_frames: int) -> list[int]:
    """Which of `available` trajectory frames to keep: every stride-th from the first and the newest, the stride
    a power of two, the smallest that keeps at most `max_frames`."""
    if available <= 0 or max_frames <= 0:
        return []
    stride = 1
    while len(range(0, available, stride)) + (0 if (available - 1) % stride == 0 else 1) > max_frames:
        stride *= 2
        if stride >= available:
            return [available - 1]
    kept = list(range(0, available, stride))
    if kept[-1] != available - 1:
        kept.append(available - 1)
    return kept


def _little(values: array) -> bytes:
    if sys.byteorder != "little":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _from_little(typecode: str, data: bytes) -> array:
    values = array(typecode)
    values.frombytes(data)
    if sys.byteorder != "little":
        values.byteswap()
    return values
