"""The NAMD config checker on the engine's fixture: keywords, value kinds, required keywords, PME cell,
something to run; configs read through Tcl (the reader's own tests are in test_namd_reader.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from templates_app.namd_config import check_config, check_namd_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "namd"
ENGINE = Path(__file__).resolve().parents[2] / "scripts" / "localcluster" / "namd_standin.py"
VALID = (FIXTURES / "job.namd").read_text()


def codes(text: str) -> list[str]:
    return [problem.code for problem in check_namd_config(text)]


@pytest.mark.parametrize("name", ["job.namd", "pbc.namd"])
def test_the_engines_fixture_configs_pass(name: str) -> None:
    assert check_namd_config((FIXTURES / name).read_text()) == []


@pytest.mark.parametrize(
    ("change", "code", "line"),
    [
        (lambda c: c + "fooBar 3\n", "NAMD_UNKNOWN_KEYWORD", 13),
        (lambda c: "temperature warm\n" + c.replace("temperature        300\n", ""), "NAMD_BAD_NUMBER", 1),
        (lambda c: c + "run 10.5\n", "NAMD_BAD_NUMBER", 13),
        (lambda c: "switching maybe\n" + c, "NAMD_BAD_BOOLEAN", 1),
        (lambda c: "cellBasisVector1 1 2\n" + c, "NAMD_BAD_VECTOR", 1),
        (lambda c: c + "PME on\n", "NAMD_NOT_SETTABLE_IN_SCRIPT", 13),
        (lambda c: c + "set x [expr {1/0}]\n", "NAMD_TCL_ERROR", 13),
        (lambda c: c + "bincoordinates $id\n", "NAMD_TCL_ERROR", 13),
        (lambda c: "outputEnergies 5\noutputEnergies 6\n" + c, "NAMD_DUPLICATE_KEYWORD", 2),
        (lambda c: "exclude everything\n" + c, "NAMD_BAD_VALUE", 1),
        (lambda c: "if {1} {\n  timestep fast\n}\n" + c, "NAMD_BAD_NUMBER", 2),
        (lambda c: c + "langevinDampng 5\n", "NAMD_UNKNOWN_KEYWORD", 13),
    ],
)
def test_a_bad_line_is_reported_with_its_code_and_line(change, code: str, line: int) -> None:
    problems = check_namd_config(change(VALID))
    assert (code, line) in [(problem.code, problem.line) for problem in problems]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda c: c.replace("outputName         out\n", ""), "NAMD_MISSING_KEYWORD"),
        (lambda c: c.replace("parameters         par_water.prm\n", ""), "NAMD_MISSING_KEYWORD"),
        (lambda c: c.replace("temperature        300\n", ""), "NAMD_MISSING_KEYWORD"),
        (lambda c: "binvelocities out.vel\n" + c, "NAMD_CONFLICT"),
        (lambda c: "PME on\n" + c, "NAMD_PME_NEEDS_CELL"),
        (
            lambda c: c.replace("minimize           50\n", "").replace("run                100\n", ""),
            "NAMD_NOTHING_TO_RUN",
        ),
    ],
)
def test_config_wide_problems(change, code: str) -> None:
    assert code in codes(change(VALID))


def test_pme_with_an_extended_system_needs_no_cell_vectors() -> None:
    assert codes("PME on\nextendedSystem prev.xsc\n" + VALID) == []


def test_keywords_are_case_insensitive_and_comments_ignored() -> None:
    assert codes("# header\n" + VALID.replace("outputName", "OUTPUTNAME") + "run 5 ;# more\n") == []


def test_the_files_the_config_reads_are_listed_with_their_lines() -> None:
    check = check_config(VALID, config_only=True)
    assert [(read.path, read.keyword, read.line) for read in check.files_read] == [
        ("water.psf", "structure", 1),
        ("water.pdb", "coordinates", 2),
        ("par_water.prm", "parameters", 3),
    ]


@given(st.text(max_size=300))
def test_the_checker_never_crashes(text: str) -> None:
    for problem in check_namd_config(text):
        assert problem.code.startswith("NAMD_")


@pytest.mark.parametrize(
    "extra",
    [
        "",
        "fooBar 3\n",
        "PME on\n",
        "PME on\ncellBasisVector1 30 0 0\ncellBasisVector2 0 30 0\ncellBasisVector3 0 0 30\n",
    ],
)
def test_the_checker_agrees_with_the_stand_in_engine(tmp_path: Path, extra: str) -> None:
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    config = VALID.replace("minimize", extra + "minimize", 1)  # before the first run command, as NAMD needs
    (tmp_path / "job.namd").write_text(config)
    env = {**os.environ, "NAMD_STANDIN_STEPS_PER_SECOND": "0"}
    engine = subprocess.run([sys.executable, str(ENGINE), "job.namd"], cwd=tmp_path, env=env, capture_output=True)
    assert (engine.returncode == 0) is (check_namd_config(config) == [])


def test_a_feature_file_is_read_only_when_its_switch_is_on() -> None:
    def reads(extra: str) -> list[str]:
        return [read.path for read in check_config(extra + VALID, config_only=True).files_read]

    assert "ref.pdb" not in reads("consref ref.pdb\nconskfile ref.pdb\n")  # constraints is off by default
    assert "ref.pdb" in reads("constraints on\nconsref ref.pdb\nconskfile ref.pdb\n")
    assert "bonds.txt" not in reads("extraBonds off\nextraBondsFile bonds.txt\n")
    assert "bonds.txt" in reads("extraBonds on\nextraBondsFile bonds.txt\n")


def test_a_restart_read_from_the_portal_is_checked_against_firsttimestep(tmp_path: Path) -> None:
    xsc = tmp_path / "prev.xsc"
    xsc.write_text("#$LABELS step a_x a_y a_z b_x b_y b_z c_x c_y c_z o_x o_y o_z\n500 30 0 0 0 30 0 0 0 30 0 0 0\n")
    restart = "bincoordinates prev.coor\nextendedSystem prev.xsc\n" + VALID.replace("temperature        300\n", "")
    restart = restart.replace("structure", "binvelocities prev.vel\nstructure", 1)
    files = {"prev.xsc": xsc}
    warned = [p for p in check_config(restart, files=files, config_only=True).warnings]
    assert [p.code for p in warned] == ["NAMD_FIRST_STEP_MISMATCH"]
    assert "ends at step 500 but 'firsttimestep' is 0" in warned[0].message
    assert check_config("firsttimestep 500\n" + restart, files=files, config_only=True).warnings == []
