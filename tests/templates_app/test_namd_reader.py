"""The Tcl reader: a config evaluated as NAMD evaluates it, nothing of the cluster's run, bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from templates_app.namd_reader import read_config


def settings(text: str, **kwargs) -> list[tuple[str, str | None, int]]:
    return [(s.name, s.value, s.line) for s in read_config(text, **kwargs).settings]


def test_tcl_is_plain_tcl_and_unknown_commands_are_keywords() -> None:
    text = (
        "set temp 310.15;\n"
        "temperature $temp\n"
        "set half [expr {$temp / 2}]\n"
        "if {$temp > 300} {\n"
        "    langevinTemp $half\n"
        "} else {\n"
        "    langevinTemp 1\n"
        "}\n"
        "proc stage {n} { parameters par$n.prm }\n"
        "foreach n {1 2} { stage $n }\n"
    )
    assert settings(text) == [
        ("temperature", "310.15", 2),
        ("langevinTemp", "155.075", 5),
        ("parameters", "par1.prm", 10),
        ("parameters", "par2.prm", 10),
    ]


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("paraTypeCharmm\ton", "on"),
        ("paraTypeCharmm = on", "on"),
        ("paraTypeCharmm on ;# a comment", "on"),
        ("paraTypeCharmm on # NAMD drops a word starting with #", "on"),
        ("  paraTypeCharmm   on  ", "on"),
    ],
)
def test_separators_and_comments_behave_as_in_tcl_and_namd(line: str, value: str) -> None:
    assert settings(line + "\n") == [("paraTypeCharmm", value, 1)]


def test_a_comment_line_and_crlf_endings_are_read_as_namd_reads_them() -> None:
    assert settings("# structure no.psf\r\nstructure a.psf\r\n") == [("structure", "a.psf", 2)]


def test_namd_commands_are_recorded_with_their_arguments_and_lines() -> None:
    reading = read_config("minimize 100\nreinitvels 300\nrun norepeat 500\ncv configfile colvars.in\n")
    assert [(c.name, c.args, c.line) for c in reading.commands] == [
        ("minimize", ("100",), 1),
        ("reinitvels", ("300",), 2),
        ("run", ("norepeat", "500"), 3),
        ("cv", ("configfile", "colvars.in"), 4),
    ]


def test_exec_open_and_file_changes_are_recorded_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    reading = read_config(f"exec touch {marker}\nset f [open {marker} w]\nfile delete {tmp_path}\nstructure a.psf\n")
    assert not marker.exists()
    assert tmp_path.exists()
    assert [(a.what, a.words[0], a.line) for a in reading.actions] == [
        ("exec", "touch", 1),
        ("open", str(marker), 2),
        ("file", "delete", 3),
    ]
    assert reading.depends_on_cluster


def test_source_reads_only_the_jobs_own_files_and_evaluates_them_with_their_lines(tmp_path: Path) -> None:
    box = tmp_path / "box.str"
    box.write_text("set a 40\n\ncellBasisVector3 0 0 $a\n")
    secret = tmp_path / "secret"
    secret.write_text("leakedKeyword from the portal's disk\n")
    text = f"source box.str\ncellBasisVector1 $a 0 0\nsource {secret}\nsource ../secret\nsource missing.str\n"
    reading = read_config(text, config_path="namd/job.namd", files={"namd/box.str": box})
    assert [(s.name, s.value, s.file, s.line) for s in reading.settings] == [
        ("cellBasisVector3", "0 0 40", "namd/box.str", 3),
        ("cellBasisVector1", "40 0 0", "namd/job.namd", 2),
    ]
    assert [(s.path, s.status) for s in reading.sources] == [
        ("namd/box.str", "read"),
        (str(secret), "outside"),
        ("secret", "missing"),
        ("namd/missing.str", "missing"),
    ]


def test_one_level_up_is_the_job_folder_only_when_the_stage_runs_in_a_subfolder() -> None:
    assert [s.status for s in read_config("source ../a.str\n", config_path="job.namd").sources] == ["outside"]
    assert [s.path for s in read_config("source ../a.str\n", config_path="namd/job.namd").sources] == ["a.str"]


def test_values_only_the_cluster_knows_are_marked_not_guessed() -> None:
    reading = read_config(
        "exec sed s/x/y/ ../box.str > box.namd.str\nsource box.namd.str\n"
        "cellBasisVector1 $a 0 0\nset n [exec python fft.py]\nPMEGridSizeX $n\noutputName $env(USER)/run\n"
    )
    assert [(s.name, s.value) for s in reading.settings] == [
        ("cellBasisVector1", None),
        ("PMEGridSizeX", None),
        ("outputName", None),
    ]
    assert [s.status for s in reading.sources] == ["cluster"]
    assert reading.made_on_cluster == {"box.namd.str"}
    assert all(failure.explained_by_cluster for failure in reading.failures)


def test_a_tcl_error_names_its_line_and_the_rest_is_still_read() -> None:
    reading = read_config("structure a.psf\nset x [expr {1 / 0}]\ncutoff 12\nif {1} {\n  timestep $nope\n}\n")
    assert [(f.code, f.line, f.explained_by_cluster) for f in reading.failures] == [
        ("TCL_ERROR", 2, False),
        ("TCL_ERROR", 5, False),
    ]
    assert [s.name for s in reading.settings] == ["structure", "cutoff"]


def test_an_unfinished_command_is_reported() -> None:
    (failure,) = read_config("structure a.psf\nif {1} {\n  cutoff 12\n").failures
    assert (failure.code, failure.line) == ("TCL_INCOMPLETE", 2)


def test_a_file_that_sources_itself_stops(tmp_path: Path) -> None:
    loop = tmp_path / "loop.str"
    loop.write_text("source loop.str\ncutoff 12\n")
    reading = read_config("source loop.str\n", files={"loop.str": loop})
    assert [s.status for s in reading.sources] == ["read", "loop"]


@pytest.mark.parametrize(
    ("text", "limits"),
    [
        ("while 1 {}\n", {"cpu", "time"}),  # no command in the body: only the process limits stop it
        ("while 1 {incr i}\n", {"commands", "time"}),
        ("set x a\nwhile 1 {append x $x}\n", {"memory", "cpu", "commands", "time"}),
        ("for {set i 0} {1} {incr i} {parameters p$i.prm}\n", {"records", "commands", "time"}),
    ],
)
def test_a_runaway_config_costs_one_bounded_process(text: str, limits: set[str]) -> None:
    started = time.monotonic()
    reading = read_config(text)
    assert reading.limit in limits
    assert time.monotonic() - started < 15
