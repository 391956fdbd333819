"""The NAMD config checker: keywords, value kinds, required keywords, PME cell, something to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from templates_app.namd_config import check_namd_config, input_files

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
        (lambda c: c + "temperature warm\n", "NAMD_BAD_NUMBER", 13),
        (lambda c: c + "run 10.5\n", "NAMD_BAD_NUMBER", 13),
        (lambda c: c + "switching maybe\n", "NAMD_BAD_BOOLEAN", 13),
        (lambda c: c + "cellBasisVector1 1 2\n", "NAMD_BAD_VECTOR", 13),
        (lambda c: c + "set x 5\n", "NAMD_TCL_UNSUPPORTED", 13),
        (lambda c: c + "bincoordinates $(id)\n", "NAMD_TCL_UNSUPPORTED", 13),
        (lambda c: c + "outputEnergies 5\noutputEnergies 6\n", "NAMD_DUPLICATE_KEYWORD", 14),
        (lambda c: c + "exclude everything\n", "NAMD_DUPLICATE_KEYWORD", 13),
        (lambda c: c + "extendedSystem a;b\n", "NAMD_TCL_UNSUPPORTED", 13),
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
        (lambda c: c + "binvelocities out.vel\n", "NAMD_CONFLICT"),
        (lambda c: c + "PME on\n", "NAMD_PME_NEEDS_CELL"),
        (
            lambda c: c.replace("minimize           50\n", "").replace("run                100\n", ""),
            "NAMD_NOTHING_TO_RUN",
        ),
    ],
)
def test_config_wide_problems(change, code: str) -> None:
    assert code in codes(change(VALID))


def test_pme_with_an_extended_system_needs_no_cell_vectors() -> None:
    assert codes(VALID + "PME on\nextendedSystem prev.xsc\n") == []


def test_keywords_are_case_insensitive_and_comments_ignored() -> None:
    assert codes("# header\n" + VALID.replace("outputName", "OUTPUTNAME") + "RUN 5 # more\n") == []


def test_input_files_lists_what_the_config_reads() -> None:
    assert input_files(VALID) == [
        ("structure", "water.psf"),
        ("coordinates", "water.pdb"),
        ("parameters", "par_water.prm"),
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
