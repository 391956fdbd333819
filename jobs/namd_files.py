"""Checks on a job's NAMD input files before submission: each file is what its role says, and the
atom counts of structure, coordinates and restart files agree.

Streams the files (a 300k-atom PSF is tens of MB); knows nothing of Django or the cluster.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

TEXT_PROBE_BYTES = 64 * 1024


@dataclass(frozen=True)
class InputProblem:
    code: str
    message: str
    file: str = ""


class InputFileInvalid(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def psf_atom_count(path: Path) -> int:
    """The `!NATOM` count of a PSF. Raises InputFileInvalid (PSF_INVALID)."""
    with path.open("rb") as stream:
        first = stream.readline()
        if not first.startswith(b"PSF"):
            raise InputFileInvalid("PSF_INVALID", f"{path.name} does not start with 'PSF': not a PSF file")
        for line in stream:
            if b"!NATOM" in line:
                try:
                    return int(line.split()[0])
                except (ValueError, IndexError) as exc:
                    raise InputFileInvalid("PSF_INVALID", f"{path.name}: unreadable !NATOM line") from exc
    raise InputFileInvalid("PSF_INVALID", f"{path.name} has no !NATOM section")


def pdb_atom_count(path: Path) -> int:
    """ATOM/HETATM records of a PDB (up to its first END). Raises InputFileInvalid (PDB_INVALID)."""
    count = 0
    with path.open("rb") as stream:
        for line in stream:
            if line.startswith((b"ATOM  ", b"HETATM")):
                if len(line.rstrip()) < 54:
                    raise InputFileInvalid("PDB_INVALID", f"{path.name}: an ATOM record is too short for coordinates")
                count += 1
            elif line.startswith((b"END", b"ENDMDL")) and count:
                break
    if count == 0:
        raise InputFileInvalid("PDB_INVALID", f"{path.name} has no ATOM or HETATM records: not a PDB file")
    return count


def binary_atom_count(path: Path) -> int:
    """Atoms in NAMD's binary .coor/.vel (int32 count, then 3 doubles each). Raises InputFileInvalid."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        header = stream.read(4)
    if len(header) == 4:
        (count,) = struct.unpack("<i", header)
        if count > 0 and size == 4 + 24 * count:
            return count
    raise InputFileInvalid("BINARY_COORDINATES_INVALID", f"{path.name} is not a NAMD binary coordinate/velocity file")


def check_text(path: Path) -> None:
    """Parameter and restraint files are text. Raises InputFileInvalid (NOT_TEXT)."""
    with path.open("rb") as stream:
        probe = stream.read(TEXT_PROBE_BYTES)
    if b"\0" in probe:
        raise InputFileInvalid("NOT_TEXT", f"{path.name} is binary, but this input must be a text file")


ROLE_CHECKS = {
    "structure": psf_atom_count,
    "coordinates": pdb_atom_count,
    "bincoordinates": binary_atom_count,
    "binvelocities": binary_atom_count,
    "parameters": check_text,
    "extrabondsfile": check_text,
}


def check_inputs(files: dict[str, list[Path]]) -> list[InputProblem]:
    """Every problem of a job's inputs, keyed by NAMD role (lower-case keyword), counts compared to the PSF."""
    problems: list[InputProblem] = []
    counts: dict[str, int] = {}
    for role, paths in files.items():
        check = ROLE_CHECKS.get(role.lower())
        for path in paths if check else ():
            try:
                result = check(path)
            except InputFileInvalid as exc:
                problems.append(InputProblem(exc.code, str(exc), path.name))
                continue
            if isinstance(result, int):
                counts[role.lower()] = result
    structure = counts.get("structure")
    for role, count in counts.items():
        if structure is not None and role != "structure" and count != structure:
            problems.append(InputProblem(
                "ATOM_COUNT_MISMATCH",
                f"the {role} file has {count} atoms but the structure (PSF) has {structure}",
                files[role][0].name,
            ))  # fmt: skip
    return problems
