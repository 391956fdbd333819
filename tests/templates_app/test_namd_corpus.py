"""The config checker on real public NAMD configs (tests/fixtures/namd_configs, sources in MANIFEST.json).

Every config is read as a template body would be (the files beside it are the job's files, the
files it reads are listed, not required) and must give no error, except where the manifest's own
notes show NAMD or the portal would refuse it too (listed in EXPECTED_ERRORS, with the reason).
Mutated copies must fail with the right code on the right line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from templates_app.namd_config import check_config

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "namd_configs"
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text())
CONFIGS = [entry["file"] for entry in MANIFEST if entry["kind"] == "config"]
# where a config sits in its job folder when the corpus keeps it elsewhere: the NAMD tutorial's SMD
# stage runs in its own folder beside common/, which it reads as ../common/
PLACED = {
    "namd-tutorial-basudevm23/ubq_ww_pcv.conf": "3-1-pullcv/ubq_ww_pcv.conf",
    "namd-tutorial-basudevm23/ubq_ww_pcf.conf": "3-2-pullcf/ubq_ww_pcf.conf",
}
EXPECTED_ERRORS = {
    # REST2 example written for NAMD 2.11's names; 2.14 and 3.0 declare soluteScalingCol/soluteScalingFile
    "namd-src-mirror/lib/replica/REST2/aaqaa3_rest2_base.namd": {
        "NAMD_UNKNOWN_KEYWORD",
        "NAMD_MISSING_KEYWORD",
        "NAMD_NOTHING_TO_RUN",
    },  # and it is a sourced part
    "namd-src-mirror/lib/replica/REST2/aaqaa3_rest2_test.namd": {"NAMD_UNKNOWN_KEYWORD"},
    # generated with absolute paths of its author's machine: the portal keeps a job in its folder
    "ties-md/TIES_MD/examples/NAMD/ethane_namd/zero_sum/leg1/replica-confs/run3.conf": {"NAMD_PATH_OUTSIDE_JOB"},
    "ties-md/TIES_MD/examples/NAMD/ethane_namd/zero_sum/leg1/replica-confs/run3-replicas.conf": {
        "NAMD_PATH_OUTSIDE_JOB",
        "NAMD_DUPLICATE_KEYWORD",
    },
    # (its wrapper sets outputName... and then sources run3.conf, which sets them again)
}


def job_of(config: str) -> tuple[str, str, dict[str, Path]]:
    """(config text, its path in the job folder, the job's files) for a corpus config."""
    top = CORPUS / config.split("/")[0]
    files = {str(path.relative_to(top)): path for path in top.rglob("*") if path.is_file()}
    placed = PLACED.get(config, str((CORPUS / config).relative_to(top)))
    if config in PLACED:  # the folders it reads beside it
        files = {("common/" + name if not name.startswith("common/") else name): path for name, path in files.items()}
    return (CORPUS / config).read_text(encoding="utf-8", errors="replace"), placed, files


def test_the_corpus_is_what_the_manifest_says() -> None:
    assert len(CONFIGS) >= 30
    for entry in MANIFEST:
        assert (CORPUS / entry["file"]).is_file(), entry["file"]
        assert entry["repo"], entry["file"]
        assert entry["path"], entry["file"]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_public_config_reads_without_an_error(config: str) -> None:
    text, placed, files = job_of(config)
    check = check_config(text, config_path=placed, files=files, config_only=True)
    assert {problem.code for problem in check.errors} == EXPECTED_ERRORS.get(config, set()), check.errors
    assert check.reading.settings, "the reader found no keyword at all"


def test_a_charmm_gui_config_reads_all_its_parameter_files_and_reports_what_it_runs_on_the_cluster() -> None:
    text, placed, files = job_of("charmm-gui-tlr4/namd/step4_equilibration.inp")
    check = check_config(text, config_path=placed, files=files, config_only=True)
    parameters = [read for read in check.files_read if read.keyword == "parameters"]
    assert len(parameters) == 50
    assert all(read.path.startswith("namd/toppar/") for read in parameters)  # this release ships namd/toppar/
    assert {"namd/step3_input.psf", "namd/step3_input.pdb"} <= {read.path for read in check.files_read}
    (action,) = check.cluster_actions
    assert action.what == "exec"
    assert action.words[0] == "tr"
    sourced = next(read for read in check.files_read if read.keyword == "source")
    assert sourced.path == "namd/step3_input.str"
    assert sourced.made_on_cluster


def test_a_value_set_by_a_file_only_the_cluster_makes_is_a_warning_not_an_error() -> None:
    text, placed, files = job_of("charmm-gui-2erm/charmm-gui/namd/step4_equilibration.inp")
    check = check_config(text, config_path=placed, files=files, config_only=True)
    assert check.errors == []
    assert "NAMD_NEEDS_CLUSTER" in {problem.code for problem in check.warnings}


def mutate(config: str, pattern: str, replacement: str) -> tuple[str, str, dict[str, Path], int]:
    text, placed, files = job_of(config)
    match = re.search(pattern, text, flags=re.MULTILINE)
    assert match is not None, pattern
    line = text.count("\n", 0, match.start()) + 1
    return text[: match.start()] + replacement + text[match.end() :], placed, files, line


STEP4 = "charmm-gui-tlr4/namd/step4_equilibration.inp"
TUTORIAL = "namd-tutorial-chauhan/namd-tutorial-files/1-3-box/ubq_wb_eq.conf"
APOA1 = "galileo-apoa1/namd_example/apoa1.namd"


@pytest.mark.parametrize(
    ("config", "pattern", "replacement", "code"),
    [
        (STEP4, r"^langevinDamping", "langevinDampng", "NAMD_UNKNOWN_KEYWORD"),
        (STEP4, r"^timestep\s+\S+", "timestep two", "NAMD_BAD_NUMBER"),
        (STEP4, r"^wrapWater\s+on", "wrapWater maybe", "NAMD_BAD_BOOLEAN"),
        (STEP4, r"^outputEnergies\s+\S+", "outputEnergies 125\noutputEnergies 250", "NAMD_DUPLICATE_KEYWORD"),
        (STEP4, r"^set temp .*$", "set temp [expr {303 / 0}]", "NAMD_TCL_ERROR"),
        (TUTORIAL, r"^cutoff\s+12", "cutoff -12", "NAMD_VALUE_OUT_OF_RANGE"),
        (TUTORIAL, r"^structure\s+.*$", "structure          /etc/passwd", "NAMD_PATH_OUTSIDE_JOB"),
        (APOA1, r"^cellBasisVector1.*$", "", "NAMD_PME_NEEDS_CELL"),
    ],
)
def test_mutated_public_configs_fail_with_the_right_code_and_line(config, pattern, replacement, code) -> None:
    text, placed, files, line = mutate(config, pattern, replacement)
    check = check_config(text, config_path=placed, files=files, config_only=True)
    found = [(problem.code, problem.line) for problem in check.errors]
    expected_line = None if code == "NAMD_PME_NEEDS_CELL" else line + (1 if code == "NAMD_DUPLICATE_KEYWORD" else 0)
    if code == "NAMD_PME_NEEDS_CELL":
        assert code in [found_code for found_code, _ in found], found
    else:
        assert (code, expected_line) in found, found


def test_a_config_without_its_structure_fails() -> None:
    text, placed, files, _ = mutate(TUTORIAL, r"^structure\s+.*$", "")
    codes = {problem.code for problem in check_config(text, config_path=placed, files=files, config_only=True).errors}
    assert "NAMD_MISSING_KEYWORD" in codes


def test_a_parameter_file_missing_from_the_job_is_named_with_its_line() -> None:
    text, placed, files = job_of(STEP4)
    reads = check_config(text, config_path=placed, files=files, config_only=True).files_read
    files = {**files, **{read.path: None for read in reads if not read.made_on_cluster}}  # held on the cluster
    assert [p for p in check_config(text, config_path=placed, files=files).errors] == []
    del files["namd/toppar/par_all36m_prot.prm"]
    check = check_config(text, config_path=placed, files=files)
    line = text.splitlines().index(next(ln for ln in text.splitlines() if "par_all36m_prot.prm" in ln)) + 1
    assert ("NAMD_INPUT_MISSING", line) in [(p.code, p.line) for p in check.errors]
