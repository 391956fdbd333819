"""A job's inputs by NAMD role: which check each role's files get, and whether the atom counts of coordinates
and restart files agree with the structure's (PSF, AMBER or GROMACS topology).

Knows the formats only through their checks; nothing of Django or the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jobs.namd_files.amber import inpcrd_atom_count, prmtop_atom_count
from jobs.namd_files.coordinates import binary_atom_count, pdb_atom_count
from jobs.namd_files.errors import InputFileInvalid
from jobs.namd_files.gromacs import gro_atom_count, grotop_atom_count
from jobs.namd_files.psf import psf_atom_count

TEXT_PROBE_BYTES = 64 * 1024


@dataclass(frozen=True)
class InputProblem:
    code: str
    message: str
    file: str = ""


def check_text(path: Path) -> None:
    """Parameter and restraint files are text. Raises InputFileInvalid (NOT_TEXT)."""
    with path.open("rb") as stream:
        probe = stream.read(TEXT_PROBE_BYTES)
    if b"\0" in probe:
        raise InputFileInvalid("NOT_TEXT", f"{path.name} is binary, but this input must be a text file")


STRUCTURE_ROLES = ("structure", "parmfile", "grotopfile")  # the file that defines the atoms; the rest must agree
STRUCTURE_LABELS = {
    "structure": "the structure (PSF)",
    "parmfile": "the AMBER topology (parmfile)",
    "grotopfile": "the GROMACS topology (grotopfile)",
}

ROLE_CHECKS: dict[str, Callable[[Path], int | None]] = {
    "structure": psf_atom_count,
    "parmfile": prmtop_atom_count,
    "grotopfile": grotop_atom_count,
    "coordinates": pdb_atom_count,
    "ambercoor": inpcrd_atom_count,
    "grocoorfile": gro_atom_count,
    "bincoordinates": binary_atom_count,
    "binvelocities": binary_atom_count,
    "parameters": check_text,
    "extrabondsfile": check_text,
}


def check_inputs(files: dict[str, list[Path]]) -> list[InputProblem]:
    """Every problem of a job's inputs, keyed by NAMD role (keyword, any case), atom counts compared to the
    structure's (PSF, AMBER or GROMACS topology)."""
    problems: list[InputProblem] = []
    counted: list[tuple[str, Path, int]] = []
    for role, paths in files.items():
        check = ROLE_CHECKS.get(role.lower())
        for path in paths if check else ():
            try:
                result = check(path)
            except InputFileInvalid as exc:
                problems.append(InputProblem(exc.code, str(exc), path.name))
                continue
            if isinstance(result, int):
                counted.append((role.lower(), path, result))
    reference = next((entry for role in STRUCTURE_ROLES for entry in counted if entry[0] == role), None)
    if reference is None:
        return problems
    reference_role, reference_path, reference_count = reference
    for role, path, count in counted:
        if path != reference_path and count != reference_count:
            problems.append(
                InputProblem(
                    "ATOM_COUNT_MISMATCH",
                    f"the {role} file has {count} atoms but {STRUCTURE_LABELS[reference_role]} has {reference_count}",
                    path.name,
                )
            )
    return problems
