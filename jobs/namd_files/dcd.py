"""DCD trajectories as NAMD writes them (src/dcdlib.C): the header, where each frame lies, a frame's coordinates
and unit cell, and a DCD written back for a subset of atoms and frames.

A NAMD DCD is three Fortran records of header (84 bytes `CORD` and the ICNTRL block; the titles; the atom
count), then per frame an optional unit-cell record (6 doubles, when ICNTRL(11) is 1) and three records of
float32 X, Y and Z. The frame count in the header is brought up to date after each frame, but a running
job's file may end in a frame being written, so frames are counted from the file's size. The step of frame
`i` (from 0) is ISTART + i * NSAVC. Either byte order is read; a CHARMM DCD with fixed atoms (only the free
atoms after the first frame) is refused, as NAMD never writes one.

Knows nothing of other formats, of Django or of the cluster.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from jobs.namd_files.errors import InputFileInvalid

CELL_RECORD_BYTES = 4 + 48 + 4
HEADER_READ_BYTES = 4096  # enough for every header but one with more than 48 title lines
MAX_TITLES = 48
TIMEFACTOR = 48.88821  # fs per AKMA time unit: the header stores the timestep in it


def _invalid(message: str) -> InputFileInvalid:
    return InputFileInvalid("DCD_INVALID", message)


@dataclass(frozen=True)
class DcdHeader:
    atoms: int
    first_step: int  # ISTART: the step of the first frame
    step_interval: int  # NSAVC: steps between frames
    timestep_fs: float
    has_cell: bool
    header_bytes: int
    endian: str  # "<" or ">"
    frames_written: int  # NSET as the header says it (a running job's may lag one frame)

    @property
    def frame_bytes(self) -> int:
        return (CELL_RECORD_BYTES if self.has_cell else 0) + 3 * (8 + 4 * self.atoms)

    def frames_in(self, file_bytes: int) -> int:
        """Whole frames in a file of this size (a frame still being written is not counted)."""
        return max(0, (file_bytes - self.header_bytes) // self.frame_bytes)

    def frame_offset(self, index: int) -> int:
        return self.header_bytes + index * self.frame_bytes

    def step_of(self, index: int) -> int:
        return self.first_step + index * self.step_interval


def read_header(data: bytes) -> DcdHeader:
    """The header at the start of `data` (its first HEADER_READ_BYTES suffice). Raises InputFileInvalid
    (DCD_INVALID)."""
    if len(data) < 100:
        raise _invalid("the file is shorter than a DCD header: it is empty or not a DCD trajectory")
    for endian in ("<", ">"):
        if struct.unpack_from(f"{endian}i", data, 0)[0] == 84:
            break
    else:
        raise _invalid("it does not start with a DCD header record (84 bytes): it is not a DCD trajectory")
    if data[4:8] != b"CORD":
        raise _invalid("its first record does not say CORD: it is not a coordinate trajectory")
    control = struct.unpack_from(f"{endian}9i", data, 8)
    (delta,) = struct.unpack_from(f"{endian}f", data, 44)
    extra = struct.unpack_from(f"{endian}10i", data, 48)
    if struct.unpack_from(f"{endian}i", data, 88)[0] != 84:
        raise _invalid("its header record does not end where it says (84 bytes): the file is damaged")
    if control[8] != 0:
        raise _invalid("it is a CHARMM trajectory with fixed atoms left out of its frames, which NAMD never writes")
    offset = 92
    (title_size,) = struct.unpack_from(f"{endian}i", data, offset)
    (titles,) = struct.unpack_from(f"{endian}i", data, offset + 4)
    if not 0 <= titles <= MAX_TITLES or title_size != 4 + 80 * titles:
        raise _invalid("its title record is not a count of 80-character lines: the file is damaged")
    offset += 4 + title_size
    if len(data) < offset + 16 or struct.unpack_from(f"{endian}i", data, offset)[0] != title_size:
        raise _invalid("its title record does not end where it says: the file is damaged or truncated")
    offset += 4
    size, atoms, end = struct.unpack_from(f"{endian}3i", data, offset)
    if size != 4 or end != 4 or atoms <= 0:
        raise _invalid("its atom-count record is not one positive number: the file is damaged")
    timestep = delta * TIMEFACTOR if math.isfinite(delta) else 0.0
    return DcdHeader(
        atoms=atoms,
        first_step=control[1],
        step_interval=control[2],
        timestep_fs=round(timestep, 6),
        has_cell=extra[0] == 1,
        header_bytes=offset + 12,
        endian=endian,
        frames_written=control[0],
    )


@dataclass(frozen=True)
class Frame:
    step: int
    cell: tuple[float, float, float, float, float, float] | None  # a, b, c (Å), alpha, beta, gamma (degrees)
    xyz: array  # float32, x0 y0 z0 x1 y1 z1 ...


def _angle(value: float) -> float:
    """A DCD cell angle: NAMD writes cosines; old CHARMM files, degrees."""
    return math.degrees(math.acos(max(-1.0, min(1.0, value)))) if -1.0 <= value <= 1.0 else value


def read_frame(header: DcdHeader, data: bytes, step: int) -> Frame:
    """One frame's bytes (header.frame_bytes of them) as coordinates. Raises InputFileInvalid (DCD_INVALID)."""
    if len(data) != header.frame_bytes:
        raise _invalid(f"a frame has {len(data)} bytes where {header.frame_bytes} were expected: it is truncated")
    endian, offset, cell = header.endian, 0, None
    if header.has_cell:
        size, a, gamma, b, beta, alpha, c, end = struct.unpack_from(f"{endian}i6di", data, 0)
        if size != 48 or end != 48:
            raise _invalid("a frame's unit-cell record is not 6 numbers: the file is damaged")
        cell = (a, b, c, _angle(alpha), _angle(beta), _angle(gamma))
        offset = CELL_RECORD_BYTES
    record = 4 * header.atoms
    axes = []
    for axis in "XYZ":
        size = struct.unpack_from(f"{endian}i", data, offset)[0]
        end = struct.unpack_from(f"{endian}i", data, offset + 4 + record)[0]
        if size != record or end != record:
            raise _invalid(f"a frame's {axis} record does not hold {header.atoms} coordinates: the file is damaged")
        values = array("f")
        values.frombytes(data[offset + 4 : offset + 4 + record])
        if (endian == "<") != (sys.byteorder == "little"):
            values.byteswap()
        axes.append(values)
        offset += 8 + record
    xyz = array("f", bytes(12 * header.atoms))
    xyz[0::3], xyz[1::3], xyz[2::3] = axes
    return Frame(step=step, cell=cell, xyz=xyz)


def _little(values: array) -> bytes:
    if sys.byteorder != "little":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def write_dcd(frames: Iterable[Frame], *, atoms: int, step_interval: int, timestep_fs: float, has_cell: bool) -> bytes:
    """A little-endian NAMD-style DCD of these frames (all with `atoms` atoms), read by VMD, MDAnalysis and NGL."""
    frames = list(frames)
    first = frames[0].step if frames else 0
    control = [len(frames), first, step_interval, (frames[-1].step if frames else 0), 0, 0, 0, 0, 0]
    parts = [
        struct.pack("<i4s9ifi8iii", 84, b"CORD", *control, timestep_fs / TIMEFACTOR, int(has_cell), *[0] * 8, 24, 84),
        struct.pack("<ii", 84, 1) + b"REMARKS FRAMES OF A NAMD PORTAL VIEW".ljust(80) + struct.pack("<i", 84),
        struct.pack("<3i", 4, atoms, 4),
    ]
    record = struct.pack("<i", 4 * atoms)
    for frame in frames:
        if has_cell:
            a, b, c, alpha, beta, gamma = frame.cell or (0.0, 0.0, 0.0, 90.0, 90.0, 90.0)
            cosines = [math.cos(math.radians(angle)) for angle in (gamma, beta, alpha)]
            parts.append(struct.pack("<i6di", 48, a, cosines[0], b, cosines[1], cosines[2], c, 48))
        for axis in range(3):
            parts.append(record + _little(array("f", frame.xyz[axis::3])) + record)
    return b"".join(parts)
