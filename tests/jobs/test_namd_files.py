"""Input checks on real files: the water fixture and the binary outputs the stand-in engine wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.namd_files import check_inputs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "namd"
ENGINE = Path(__file__).resolve().parents[2] / "scripts" / "localcluster" / "namd_standin.py"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The water fixture plus out.coor/out.vel/out.xsc from a real engine run."""
    workdir = tmp_path_factory.mktemp("inputs")
    for name in ("water.psf", "water.pdb", "par_water.prm", "job.namd"):
        shutil.copy(FIXTURES / name, workdir / name)
    env = {**os.environ, "NAMD_STANDIN_STEPS_PER_SECOND": "0"}
    subprocess.run([sys.executable, str(ENGINE), "job.namd"], cwd=workdir, env=env, check=True, capture_output=True)
    return workdir


def roles(system: Path, **overrides: str) -> dict[str, list[Path]]:
    names = {
        "structure": "water.psf",
        "coordinates": "water.pdb",
        "parameters": "par_water.prm",
        "bincoordinates": "out.coor",
        "binvelocities": "out.vel",
        **overrides,
    }
    return {role: [system / name] for role, name in names.items()}


def codes(system: Path, **overrides: str) -> list[str]:
    return [problem.code for problem in check_inputs(roles(system, **overrides))]


def test_a_consistent_system_with_restart_files_passes(system: Path) -> None:
    assert codes(system) == []


def test_each_file_must_be_what_its_role_says(system: Path) -> None:
    assert codes(system, structure="water.pdb") == ["PSF_INVALID"]
    assert codes(system, coordinates="water.psf") == ["PDB_INVALID"]
    assert codes(system, bincoordinates="out.xsc") == ["BINARY_COORDINATES_INVALID"]
    assert codes(system, parameters="out.coor") == ["NOT_TEXT"]


def test_atom_counts_must_agree_with_the_psf(system: Path) -> None:
    two_atoms = system / "two.pdb"
    two_atoms.write_text(
        "".join(line + "\n" for line in (system / "water.pdb").read_text().splitlines() if "H2" not in line)
    )
    assert codes(system, coordinates="two.pdb") == ["ATOM_COUNT_MISMATCH"]
    truncated = system / "short.coor"
    truncated.write_bytes((system / "out.coor").read_bytes()[:-24])
    assert codes(system, bincoordinates="short.coor") == ["BINARY_COORDINATES_INVALID"]
