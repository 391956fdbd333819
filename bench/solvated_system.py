"""Bench and test equipment: a solvated system of a chosen size, written as NAMD reads it (PSF + PDB), and a DCD
of it, so the 3D view can be measured and stressed on a system the size of what labs run.

The solute is ubiquitin (the test corpus's real psfgen PSF and PDB, tests/fixtures/namd_inputs) repeated in a
row, one segment each; TIP3 water fills a cubic grid around it (3.1 Å apart, O-H 0.96 Å) with a SOD/CLA
pair per 200 waters, up to the atom count asked for. The PSF has the atoms only (no bonds: NAMD's reader and
the viewer need none). Frames move every atom by a small random step from the frame before (seeded).
"""

from __future__ import annotations

import math
import random
from array import array
from dataclasses import dataclass
from pathlib import Path

from jobs.namd_files.dcd import Frame, write_dcd
from jobs.viewer.atoms import pdb_coordinates, psf_atoms

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "namd_inputs"
SPACING = 3.1
WATERS_PER_ION_PAIR = 200


@dataclass(frozen=True)
class SystemFiles:
    psf: Path
    pdb: Path
    atoms: int
    solute_atoms: int
    box: float


def _psf_line(number: int, segid: str, resid: int, resname: str, name: str, charge: float, mass: float) -> str:
    return (
        f"{number:8d} {segid:<4} {resid:<4d} {resname:<4} {name:<4} {name[:4]:<4} {charge:10.6f} {mass:13.4f} {0:11d}"
    )


def _pdb_line(number: int, name: str, resname: str, resid: int, xyz: tuple[float, float, float], segid: str) -> str:
    shown = name if len(name) == 4 else f" {name}"
    return (
        f"ATOM  {number % 100000:5d} {shown:<4} {resname:<4}X{resid % 10000:4d}    "
        f"{xyz[0]:8.3f}{xyz[1]:8.3f}{xyz[2]:8.3f}  1.00  0.00      {segid:<4}"
    )


def write_system(folder: Path, atoms: int, *, copies: int = 1) -> SystemFiles:
    """About `atoms` atoms (never fewer than the solute's): `copies` ubiquitins in water and ions."""
    protein = psf_atoms(CORPUS / "ubq.psf")
    coordinates = pdb_coordinates(CORPUS / "ubq.pdb", len(protein))
    psf_lines: list[str] = []
    pdb_lines: list[str] = []
    span = 45.0  # one ubiquitin's room along x
    for copy in range(copies):
        segid = f"PRO{copy}"[:4]
        for i in range(len(protein)):
            number = len(psf_lines) + 1
            xyz = (coordinates[3 * i] + copy * span, coordinates[3 * i + 1], coordinates[3 * i + 2])
            resid = int(protein.resid[i])
            psf_lines.append(_psf_line(number, segid, resid, protein.resname[i], protein.name[i], 0.0, 12.011))
            pdb_lines.append(_pdb_line(number, protein.name[i], protein.resname[i], resid, xyz, segid))
    solute = len(psf_lines)
    waters = max(0, (atoms - solute) // 3)
    waters -= 2 * (waters // WATERS_PER_ION_PAIR) // 3  # room for the ions
    side = math.ceil(waters ** (1 / 3)) + 1
    box = side * SPACING
    center = (copies * span / 2, 0.0, 0.0)
    resid = 0
    rng = random.Random(7)
    for gx in range(side):
        for gy in range(side):
            for gz in range(side):
                if resid >= waters:
                    break
                resid += 1
                origin = tuple(center[a] - box / 2 + g * SPACING for a, g in enumerate((gx, gy, gz)))
                ion = resid % WATERS_PER_ION_PAIR in (0, 1) and resid > 1
                if ion:
                    name = "SOD" if resid % 2 == 0 else "CLA"
                    number = len(psf_lines) + 1
                    psf_lines.append(
                        _psf_line(
                            number,
                            "IONS",
                            resid,
                            name,
                            name,
                            1.0 if name == "SOD" else -1.0,
                            22.9898 if name == "SOD" else 35.45,
                        )
                    )
                    pdb_lines.append(_pdb_line(number, name, name, resid, origin, "IONS"))
                    continue
                angle = rng.uniform(0, 2 * math.pi)
                for name, offset, mass in (
                    ("OH2", (0.0, 0.0, 0.0), 15.9994),
                    ("H1", (0.9572, 0.0, 0.0), 1.008),
                    ("H2", (-0.24 * math.cos(angle), 0.927, 0.24 * math.sin(angle)), 1.008),
                ):
                    number = len(psf_lines) + 1
                    xyz = (origin[0] + offset[0], origin[1] + offset[1], origin[2] + offset[2])
                    psf_lines.append(_psf_line(number, "SOLV", resid, "TIP3", name, 0.0, mass))
                    pdb_lines.append(_pdb_line(number, name, "TIP3", resid, xyz, "SOLV"))
    total = len(psf_lines)
    psf = folder / "system.psf"
    pdb = folder / "system.pdb"
    sections = "".join(
        f"\n{0:8d} !{name}\n"
        for name in (
            "NBOND: bonds",
            "NTHETA: angles",
            "NPHI: dihedrals",
            "NIMPHI: impropers",
            "NDON: donors",
            "NACC: acceptors",
        )
    )
    psf.write_text(
        f"PSF EXT\n\n{1:8d} !NTITLE\n REMARKS A SOLVATED SYSTEM FOR THE PORTAL'S BENCH\n\n{total:8d} !NATOM\n"
        + "\n".join(psf_lines)
        + "\n"
        + sections
        + f"\n{0:8d} !NNB\n\n"
    )
    pdb.write_text("\n".join(pdb_lines) + "\nEND\n")
    return SystemFiles(psf=psf, pdb=pdb, atoms=total, solute_atoms=solute, box=box)


def write_trajectory(system: SystemFiles, path: Path, frames: int, *, step_interval: int = 500) -> None:
    """`frames` frames of the system, each atom a seeded random step (0.05 Å a coordinate) from where it was."""
    xyz = pdb_coordinates(system.pdb, system.atoms)
    rng = random.Random(11)
    written = []
    for index in range(frames):
        xyz = array("f", (value + rng.uniform(-0.05, 0.05) for value in xyz))
        cell = (system.box, system.box, system.box, 90.0, 90.0, 90.0)
        written.append(Frame(step=(index + 1) * step_interval, cell=cell, xyz=xyz))
    path.write_bytes(
        write_dcd(written, atoms=system.atoms, step_interval=step_interval, timestep_fs=2.0, has_cell=True)
    )
