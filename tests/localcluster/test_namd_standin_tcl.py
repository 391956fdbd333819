"""The stand-in NAMD engine reads configs through Tcl, as NAMD's ScriptTcl does, and checks them against NAMD's table.

The engine runs as a subprocess on the one-water system in tests/fixtures/namd, and on a CHARMM-GUI Solution
Builder download (real step4/step5 configs) in tests/fixtures/namd_standin/charmm_gui_solution.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.localcluster.test_namd_standin import (
    ATOMS,
    FIXTURES,
    assert_fatal,
    configure,
    energy_steps,
    fixture_config,
    read_binary_vectors,
    run_engine,
)

CHARMM_GUI = Path(__file__).resolve().parents[1] / "fixtures" / "namd_standin" / "charmm_gui_solution"
CHARMM_GUI_ATOMS = 9  # three TIP3 waters in the fixture's step3_input.psf

# job.namd without its commands, so a test can add its own
INPUTS = configure(fixture_config("job.namd"), drop=("minimize", "run"))


@pytest.fixture
def system(tmp_path: Path) -> Path:
    directory = tmp_path / "system"
    shutil.copytree(FIXTURES, directory)
    return directory


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def tcl_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("TCL: ")]


# ------------------------------------------------------------------------------------------- Tcl


def test_the_config_is_a_tcl_script_that_runs_for_real(system: Path) -> None:
    (system / "inc").mkdir()
    (system / "inc" / "helpers.tcl").write_text("set cutoff 12.0\nproc half {x} { return [expr {$x / 2.0}] }\n")
    config = (
        configure(INPUTS, drop=("cutoff", "outputEnergies"))
        + """\
source inc/helpers.tcl
set temp [expr {2 * 155}]
if {$temp > 200} { langevinTemp $temp } else { langevinTemp 100 }
langevin on
exec echo "cutoff $cutoff" | sed -e "s/cutoff/pairlistdist/" > generated.str
source generated.str
cutoff $cutoff
switchdist [half 20]
foreach {keyword value} {outputEnergies 5 outputTiming 20} { $keyword $value }
minimize 10
run [expr {2 * 10}]
"""
    )
    log = succeeded(run_engine(system, config))

    assert (system / "generated.str").read_text() == "pairlistdist 12.0\n"  # written by exec, then sourced
    assert "Info: PAIRLIST DISTANCE      12" in log
    assert "Info: LANGEVIN TEMPERATURE   310" in log
    assert energy_steps(log) == [0, 5, 10, 10, 15, 20, 25, 30]
    assert tcl_lines(log) == [
        "TCL: Suspending until startup complete.",
        "TCL: Minimizing for 10 steps",
        "TCL: Running for 20 steps",
    ]


def test_tabs_equals_signs_semicolons_and_comments_are_read_as_tcl_and_namd_read_them(system: Path) -> None:
    config = (
        "structure\twater.psf\n"
        "coordinates = water.pdb\n"
        "parameters=par_water.prm\n"
        "paraTypeCharmm =on ;# a Tcl comment after a semicolon\n"
        "temperature 300; outputName out; # two settings on a line, then a comment\n"
        "exclude  scaled1-4   # NAMD drops the words from the first one starting with #\n"
        "cutoff 12\n"
        "# a comment line: run 1000 is not run\n"
        "outputEnergies { 10 }\n"
        "minimize 10\n"
    )
    log = succeeded(run_engine(system, config))

    assert "Info: STRUCTURE FILE         water.psf" in log
    assert "Info: INITIAL TEMPERATURE    300" in log
    assert energy_steps(log) == [0, 10]
    assert (system / "out.coor").exists()


def test_a_keyword_alone_reads_its_value_and_print_writes_a_tcl_line(system: Path) -> None:
    config = INPUTS + 'set name [outputName]\nprint "output goes to" $name\nminimize 10\nprint [numPes] PEs\n'
    log = succeeded(run_engine(system, config, args=("+p3",)))

    assert tcl_lines(log) == [
        "TCL: output goes to out",
        "TCL: Suspending until startup complete.",
        "TCL: Minimizing for 10 steps",
        "TCL: 3 PEs",
    ]


def test_a_tcl_error_names_the_procedure_and_the_line_of_the_config(system: Path) -> None:
    config = INPUTS + "proc equilibrate {} {\n    set steps 10\n    run $steps 20 30\n}\nequilibrate\n"
    result = run_engine(system, config)

    assert_fatal(
        result,
        'FATAL ERROR: too many args\n    while executing\n"run $steps 20 30"\n'
        '    (procedure "equilibrate" line 3)\n    invoked from within\n"equilibrate"\n'
        '    (file "job.namd" line 15)',
    )


def test_a_script_may_catch_a_tcl_error_of_a_namd_command(system: Path) -> None:
    config = INPUTS + 'if {[catch {run abc} message]} { print "caught:" $message }\nrun 10\n'
    log = succeeded(run_engine(system, config))

    assert 'TCL: caught: expected integer but got "abc"' in log.splitlines()
    assert energy_steps(log) == [0, 10]


def test_a_parameter_set_after_startup_must_be_one_namd_lets_a_script_change(system: Path) -> None:
    config = INPUTS + "run 10\nlangevinTemp 250\nrun 10\ncoordinates other.pdb\nrun 10\n"
    result = run_engine(system, config)

    assert result.returncode == 1, result.stdout
    assert "TCL: Setting parameter langevinTemp to 250" in result.stdout
    assert energy_steps(result.stdout) == [0, 10, 10, 20]
    assert result.stdout.endswith(
        "TCL: Setting parameter coordinates to other.pdb\n"
        "FATAL ERROR: Setting parameter coordinates from script failed!\n"
        '    while executing\n"coordinates other.pdb"\n    (file "job.namd" line 14)\n'
    )


def test_numsteps_changed_by_the_script_is_ignored_by_the_next_run_as_namd_says(system: Path) -> None:
    log = succeeded(run_engine(system, INPUTS + "minimize 10\nnumsteps 1000\nrun 20\n"))

    assert tcl_lines(log)[-3:] == [
        "TCL: Setting parameter numsteps to 1000",
        "TCL: Original numsteps 1000 will be ignored.",
        "TCL: Running for 20 steps",
    ]
    assert energy_steps(log)[-1] == 30


def test_callback_checkpoint_revert_output_and_exit_are_namds_commands(system: Path) -> None:
    config = (
        INPUTS
        + """\
proc energies {labels values} { print "callback" [lindex $labels 0] [lindex $values 0] }
callback energies
run 10
checkpoint
run norepeat 10
revert
output withforces snapshot
exit
print "not reached"
"""
    )
    log = succeeded(run_engine(system, config))

    assert tcl_lines(log)[-5:] == [
        "TCL: callback TS 10",
        "TCL: Running for 10 steps without repeating first step",
        "TCL: callback TS 20",
        "TCL: Writing to files with basename snapshot.",
        "TCL: Exiting due to exit command.",
    ]
    lines = log.splitlines()
    assert lines.index("CHECKPOINTING POSITIONS AT STEP 10") < lines.index("REVERTING POSITIONS AT STEP 20")
    assert read_binary_vectors(system / "snapshot.coor")[0] == ATOMS
    assert read_binary_vectors(system / "snapshot.force")[0] == ATOMS
    assert (system / "out.coor").exists()  # exit after a run writes the final output first
    assert lines[-1] == "[Partition 0][Node 0] End of program"


def test_exit_takes_its_status_and_abort_is_fatal(system: Path) -> None:
    assert run_engine(system, INPUTS + "exit 3\n").returncode == 3

    result = run_engine(system, INPUTS + "abort the input is not ready\n")

    assert_fatal(
        result, 'FATAL ERROR: TCL: the input is not ready\n    while executing\n"abort the input is not ready"'
    )


def test_command_line_keywords_are_evaluated_before_the_config_file(system: Path) -> None:
    log = succeeded(
        run_engine(
            system, configure(fixture_config("job.namd"), drop=("outputEnergies",)), args=("--outputEnergies", "25")
        )
    )

    assert "Info: Command-line argument is --outputEnergies 25" in log
    assert energy_steps(log) == [0, 25, 50, 50, 75, 100, 125, 150]


# ------------------------------------------------------------------------------------ keyword table


def test_an_unknown_keyword_is_refused_with_namds_words_and_where_it_was_set(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), add=("fooBar 1",)))

    assert_fatal(
        result,
        "ERROR: The following variables were set in the\n"
        "ERROR: configuration file but are NOT VALID\n"
        'ERROR:    fooBar (file "job.namd" line 1)\n'
        "FATAL ERROR: ERROR(S) IN THE CONFIGURATION FILE",
    )


def test_a_command_is_case_sensitive_as_in_tcl_so_run_in_capitals_is_an_unknown_keyword(system: Path) -> None:
    result = run_engine(system, INPUTS + "Run 10\n")

    assert_fatal(result, 'ERROR:    Run (file "job.namd" line 11)')


def test_a_keyword_whose_parent_switch_is_off_is_ignored_with_namds_warning(system: Path) -> None:
    log = succeeded(run_engine(system, configure(fixture_config("job.namd"), add=("langevin off", "langevinTemp 300"))))

    assert (
        "Warning: The following variables were set in the\n"
        "Warning: configuration file but will be ignored:\n"
        'Warning:    langevinTemp (Langevin) (file "job.namd" line 2)\n'
    ) in log
    assert "LANGEVIN" not in log


def test_a_keyword_given_twice_names_both_places(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), add=("outputEnergies 5",)))

    assert_fatal(
        result,
        "ERROR: Multiple definitions of 'outputEnergies' "
        '(file "job.namd" line 1) (file "job.namd" line 8)\n'
        "ERROR:   in the configuration file are not allowed\n",
    )


def test_parameters_may_be_given_many_times(system: Path) -> None:
    shutil.copy(system / "par_water.prm", system / "par_more.prm")

    log = succeeded(run_engine(system, configure(fixture_config("job.namd"), add=("parameters par_more.prm",))))

    assert "Info: PARAMETERS             par_more.prm" in log
    assert "Info: PARAMETERS             par_water.prm" in log


def test_a_value_out_of_range_is_refused_with_namds_words(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), drop=("cutoff",), add=("cutoff -2",)))

    assert_fatal(result, "ERROR: 'cutoff' was set to -2 but it should be positive (file \"job.namd\" line 1)")


@pytest.mark.parametrize(("program", "returncode"), [("namd2", 1), ("namd3", 0)])
def test_namd2_refuses_a_keyword_that_is_new_in_namd3(system: Path, program: str, returncode: int) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), add=("outputPerformance off",)), program=program)

    assert result.returncode == returncode, result.stdout
    assert ('ERROR:    outputPerformance (file "job.namd" line 1)' in result.stdout) is (program == "namd2")


# ------------------------------------------------------------------------------------- output files


def test_outputs_go_where_the_config_names_them(system: Path) -> None:
    (system / "output").mkdir()
    (system / "trajectories").mkdir()
    config = configure(
        fixture_config("pbc.namd"),
        drop=("outputName",),
        add=(
            "outputName output/run1",
            "restartname output/restart/run1",
            "DCDfile trajectories/run1.dcd",
            "XSTfile trajectories/run1.xst",
            "binaryOutput no",
        ),
    )
    (system / "output" / "restart").mkdir()

    log = succeeded(run_engine(system, config, name="pbc.namd"))

    assert "WRITING COORDINATES TO DCD FILE trajectories/run1.dcd AT STEP 50" in log
    assert (system / "trajectories" / "run1.dcd").stat().st_size > 0
    assert len((system / "trajectories" / "run1.xst").read_text().splitlines()) == 2 + 6
    assert read_binary_vectors(system / "output" / "restart" / "run1.coor")[0] == ATOMS
    assert (system / "output" / "restart" / "run1.xsc").exists()
    coordinates = (system / "output" / "run1.coor").read_text()  # binaryOutput no: a PDB file
    assert sum(line.startswith("ATOM") for line in coordinates.splitlines()) == ATOMS
    assert not list(system.glob("water_out*"))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (("outputName missing/run1",), "Unable to open text file missing/run1.xsc: No such file or directory"),
        (
            ("outputName out", "dcdfreq 10", "DCDfile missing/run1.dcd"),
            "Couldn't open DCD file missing/run1.dcd: No such file or directory",
        ),
        (
            ("outputName out", "restartfreq 50", "restartname missing/run1"),
            "Unable to open text file missing/run1.xsc: No such file or directory",
        ),
    ],
)
def test_like_namd_the_engine_does_not_create_a_missing_output_folder(
    system: Path, lines: tuple[str, ...], message: str
) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), drop=("outputName",), add=lines))

    assert result.returncode == 1, result.stdout
    assert f"FATAL ERROR: {message}\n" in result.stdout
    assert not (system / "missing").exists()


# --------------------------------------------------------------------------------- feature inputs


def pdb_with_b_factors(system: Path, name: str, atoms: int = ATOMS) -> None:
    records = [line for line in (system / "water.pdb").read_text().splitlines() if line.startswith("ATOM")]
    (system / name).write_text(
        "\n".join([*(record[:60] + "  1.00" + record[66:] for record in records[:atoms]), "END", ""])
    )


def test_constraints_colvars_extra_bonds_and_other_feature_inputs_are_checked_and_accepted(system: Path) -> None:
    pdb_with_b_factors(system, "restraints.pdb")
    (system / "cv.in").write_text(
        "colvar {\n  name d\n  distance { group1 { atomNumbers 1 } group2 { atomNumbers 2 } }\n}\n"
    )
    (system / "bonds.txt").write_text("# restraints\nbond 0 1 10.0 0.96\nangle 1 0 2 5.0 104.5\n")
    config = configure(
        fixture_config("job.namd"),
        add=(
            "constraints on",
            "consexp 2",
            "consref restraints.pdb",
            "conskfile restraints.pdb",
            "conskcol B",
            "colvars on",
            "colvarsConfig cv.in",
            "extraBonds on",
            "extraBondsFile bonds.txt",
            "fixedAtoms on",
            "fixedAtomsFile restraints.pdb",
            "fixedAtomsCol B",
            "alch on",
            "alchType fep",
            "alchFile restraints.pdb",
            "alchCol B",
            "alchLambda 0",
            "alchLambda2 0.1",
            "SMD on",
            "SMDFile restraints.pdb",
            "SMDk 5",
            "SMDVel 0.00002",
            "SMDDir 0 0 1",
            "stochRescale on",
            "stochRescaleTemp 300",
            "stochRescalePeriod 2",
            "IMDon on",
            "IMDport 3000",
            "PMEGridSpacing 1.0",
            "hgroupCutoff 2.8",
            "splitPatch hydrogen",
            "useSettle on",
            "pairlistsPerCycle 2",
            "margin 2.5",
        ),
    )

    log = succeeded(run_engine(system, config))

    assert "Info: READING EXTRA BONDS FILE bonds.txt" in log
    assert energy_steps(log)[-1] == 150


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (("constraints on", "consref missing.pdb", "conskfile missing.pdb"), "Cannot open file 'missing.pdb'"),
        (
            ("constraints on", "consref short.pdb", "conskfile water.pdb"),
            "FATAL ERROR: Number of atoms in constraint reference PDB doesn't match coordinate PDB",
        ),
        (
            ("constraints on", "consref water.pdb", "conskfile water.pdb", "conskcol Q"),
            "FATAL ERROR: conskcol must have value of X, Y, Z, O, or B",
        ),
        (
            ("constraints on", "consref water.pdb"),
            "ERROR: 'conskfile' is a required configuration option\nERROR:   when 'constraints' is set",
        ),
        (("colvars on", "colvarsConfig missing.in"), "FATAL ERROR: Unable to open text file missing.in"),
        (("colvars on", "colvarsConfig empty.in"), "FATAL ERROR: Error in the collective variables module: exiting."),
        (
            ("extraBonds on", "extraBondsFile missing.txt"),
            "FATAL ERROR: UNABLE TO OPEN EXTRA BONDS FILE missing.txt: No such file or directory",
        ),
        (
            ("extraBonds on", "extraBondsFile bad_bonds.txt"),
            "FATAL ERROR: BAD LINE IN EXTRA BONDS FILE bad_bonds.txt: spring 0 1 10 1",
        ),
        (
            ("extraBonds on", "extraBondsFile far_bonds.txt"),
            "FATAL ERROR: BAD ATOM ID IN EXTRA BONDS FILE far_bonds.txt: bond 0 3 10 1",
        ),
        (("fixedAtoms on", "fixedAtomsFile missing.pdb"), "Cannot open file 'missing.pdb'"),
        (("alch on", "alchFile missing.pdb"), "Cannot open file 'missing.pdb'"),
        (("alch on", "alchLambda 1.5"), "FATAL ERROR: Alchemical lambda values should be in the range [0.0, 1.0]"),
        (("SMD on", "SMDk 5", "SMDVel 1", "SMDDir 0 0 1"), "ERROR: 'SMDFile' is a required configuration option"),
        (("tclForces on", "tclForcesScript missing.tcl"), 'FATAL ERROR: couldn\'t read file "missing.tcl"'),
    ],
)
def test_a_missing_or_malformed_feature_input_is_fatal(system: Path, lines: tuple[str, ...], message: str) -> None:
    pdb_with_b_factors(system, "short.pdb", atoms=ATOMS - 1)
    (system / "empty.in").write_text("# no colvar here\nharmonic {\n  colvars d\n}\n")
    (system / "bad_bonds.txt").write_text("spring 0 1 10 1\n")
    (system / "far_bonds.txt").write_text("bond 0 3 10 1\n")  # atom ids count from 0: water has 0, 1, 2

    assert_fatal(run_engine(system, configure(fixture_config("job.namd"), add=lines)), message)


def test_cv_configfile_is_checked_like_colvars_config(system: Path) -> None:
    config = INPUTS + "colvars on\ncv configfile missing.in\nrun 10\n"

    result = run_engine(system, config)

    assert_fatal(
        result,
        'FATAL ERROR: Error: in opening file "missing.in".\n'
        '    while executing\n"cv configfile missing.in"\n    (file "job.namd" line 12)',
    )


# ------------------------------------------------------------------------------------------ CHARMM-GUI


def test_a_charmm_gui_solution_builder_download_runs_step4_then_step5(tmp_path: Path) -> None:
    download = tmp_path / "charmm-gui"
    shutil.copytree(CHARMM_GUI, download)
    namd = download / "namd"

    step4 = succeeded(run_engine(namd, name="step4_equilibration.inp", args=("+p2",)))

    assert (namd / "step3_input.str").read_text().splitlines()[2] == " set a 141"  # made by the config's exec
    assert "Info: PERIODIC CELL BASIS 1  141 0 0" in step4  # the cell from step3_input.xsc
    assert "Info: PARAMETERS             toppar/toppar_all36_label_fluorophore.str" in step4
    assert tcl_lines(step4)[1:] == [
        "TCL: Minimizing for 5000 steps",
        "TCL: Setting parameter numsteps to 125000",
        "TCL: Original numsteps 125000 will be ignored.",
        "TCL: Running for 125000 steps",
    ]
    assert "WRITING COORDINATES TO OUTPUT FILE AT STEP 130000" in step4
    for suffix in ("coor", "vel", "xsc", "dcd", "xst", "restart.coor", "restart.vel", "restart.xsc"):
        assert (namd / f"step4_equilibration.{suffix}").exists(), suffix

    step5 = succeeded(run_engine(namd, name="step5_production.inp", args=("+p2",)))

    assert "Info: EXTENDED SYSTEM FILE   step4_equilibration.xsc" in step5
    assert "Info: Reading from binary file step4_equilibration.coor" in step5
    assert "Info: VELOCITY FILE          step4_equilibration.vel" in step5
    assert tcl_lines(step5)[1:] == [
        "TCL: Original numsteps 50000000 will be ignored.",
        "TCL: Running for 50000000 steps",
    ]
    assert energy_steps(step5)[-1] == 50_000_000
    assert read_binary_vectors(namd / "step5_production.coor")[0] == CHARMM_GUI_ATOMS
    assert (namd / "step5_production.xsc").read_text().splitlines()[2].split()[0] == "50000000"


def test_charmm_gui_step5_needs_the_outputs_of_step4(tmp_path: Path) -> None:
    download = tmp_path / "charmm-gui"
    shutil.copytree(CHARMM_GUI, download)

    result = run_engine(download / "namd", name="step5_production.inp")

    assert_fatal(result, "FATAL ERROR: Unable to open extended system file.")
