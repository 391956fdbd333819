"""`manage.py check_namd_config`: one JSON object per problem, exit 1 on an error."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "namd"
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "namd_configs"


def run(*args: str) -> tuple[int, list[dict]]:
    out = StringIO()
    try:
        call_command("check_namd_config", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = int(exc.code)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_config_with_its_files_beside_it_passes(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES, tmp_path / "job", ignore=shutil.ignore_patterns("logs"))
    code, lines = run(str(tmp_path / "job" / "job.namd"))
    assert code == 0
    assert [line for line in lines if line["severity"] == "error"] == []


def test_a_missing_input_and_a_typo_are_errors_with_file_line_and_code(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES, tmp_path / "job", ignore=shutil.ignore_patterns("logs"))
    (tmp_path / "job" / "water.pdb").unlink()
    config = tmp_path / "job" / "job.namd"
    config.write_text("langevinDampng 1\n" + config.read_text())
    code, lines = run(str(config))
    assert code == 1
    found = {(line["code"], line["line"]) for line in lines}
    assert {("NAMD_UNKNOWN_KEYWORD", 1), ("NAMD_INPUT_MISSING", 3)} <= found
    assert all(set(line) == {"file", "line", "code", "severity", "message"} for line in lines)
    assert all(line["file"] == str(config) for line in lines)


def test_config_only_lists_the_files_read_instead_of_requiring_them(tmp_path: Path) -> None:
    config = tmp_path / "job.namd"
    shutil.copy(FIXTURES / "job.namd", config)
    code, lines = run("--config-only", str(config))
    assert code == 0
    assert [line["message"] for line in lines if line["code"] == "NAMD_READS"] == [
        "reads water.psf (structure)",
        "reads water.pdb (coordinates)",
        "reads par_water.prm (parameters)",
    ]


def test_a_charmm_gui_stage_is_checked_in_its_download_and_reports_its_cluster_commands() -> None:
    top = CORPUS / "charmm-gui-tlr4"
    code, lines = run("--config-only", "--job-dir", str(top), str(top / "namd" / "step4_equilibration.inp"))
    assert code == 0
    assert any(line["code"] == "NAMD_RUNS_ON_CLUSTER" and "exec tr" in line["message"] for line in lines)


def test_a_file_outside_the_job_folder_is_refused(tmp_path: Path) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not inside the job folder"):
        call_command("check_namd_config", "--job-dir", str(tmp_path / "elsewhere"), str(FIXTURES / "job.namd"))
