"""The stand-in NAMD engine (test equipment): config checks, NAMD's log shapes, output files, pacing, signals.

The engine runs as a subprocess, as the cluster's `namd2`/`namd3` wrappers run it, on the one-water system
in tests/fixtures/namd.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "scripts" / "localcluster" / "namd_standin.py"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "namd"
ATOMS = 3  # the fixture PSF's !NATOM
BOLTZMANN = 0.0019872041

ETITLE_PERIODIC = (
    "ETITLE:      TS           BOND          ANGLE          DIHED          IMPRP               ELECT            VDW"
    "       BOUNDARY           MISC        KINETIC               TOTAL           TEMP      POTENTIAL         TOTAL3"
    "        TEMPAVG            PRESSURE      GPRESSURE         VOLUME       PRESSAVG      GPRESSAVG"
)
# NAMD: printf("TIMING: %d  CPU: %g, %g/step  Wall: %g, %g/step, %g hours remaining, %f MB of memory in use.")
G = r"[-+]?\d+(?:\.\d+)?(?:e[-+]\d+)?"
TIMING = re.compile(
    rf"^TIMING: (\d+)  CPU: ({G}), ({G})/step  Wall: ({G}), ({G})/step, ({G}) hours remaining, "
    r"(\d+\.\d{6}) MB of memory in use\.$"
)
WALLCLOCK = re.compile(r"^WallClock: \d+\.\d{6}  CPUTime: \d+\.\d{6}  Memory: \d+\.\d{6} MB$")
MINIMIZE_STEPS = list(range(0, 101, 10))
RUN_STEPS = list(range(100, 301, 10))


@pytest.fixture
def system(tmp_path: Path) -> Path:
    directory = tmp_path / "system"
    shutil.copytree(FIXTURES, directory)
    return directory


def run_engine(
    directory: Path,
    config: str | None = None,
    *,
    name: str = "job.namd",
    args: tuple[str, ...] = (),
    speed: str = "inf",
    cwd: Path | None = None,
    program: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the engine like the batch script does; `config` replaces the named config file first.

    `program` runs it through a symlink of that name, as an installed `namd2` or `namd3`.
    """
    if config is not None:
        (directory / name).write_text(config)
    engine = ENGINE
    if program is not None:
        engine = directory.parent / program
        if not engine.exists():
            engine.symlink_to(ENGINE)
    env = {**os.environ, "NAMD_STANDIN_STEPS_PER_SECOND": speed}
    return subprocess.run(
        [sys.executable, str(engine), *args, name],
        cwd=cwd or directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def configure(
    base: str, *, drop: tuple[str, ...] = (), add: tuple[str, ...] = (), commands: tuple[str, ...] = ()
) -> str:
    """A variant of a config: lines whose keyword is in `drop` removed, `add` first, `commands` last."""
    dropped = {keyword.lower() for keyword in drop}
    kept = [line for line in base.splitlines() if not line.split() or line.split()[0].lower() not in dropped]
    return "\n".join([*add, *kept, *commands]) + "\n"


def fixture_config(name: str) -> str:
    return (FIXTURES / name).read_text()


def energy_table(log: str) -> list[dict[str, float]]:
    titles = next(line.split()[1:] for line in log.splitlines() if line.startswith("ETITLE:"))
    rows = [line.split()[1:] for line in log.splitlines() if line.startswith("ENERGY:")]
    return [dict(zip(titles, map(float, row), strict=True)) for row in rows]


def energy_steps(log: str) -> list[int]:
    return [int(line.split()[1]) for line in log.splitlines() if line.startswith("ENERGY:")]


def namd_energy_line(step: int, values: list[float]) -> str:
    """NAMD's ENERGY line: "ENERGY: %7d", then " %14.4f" per value and 5 more spaces before ELECT, TOTAL, PRESSURE."""
    cells = [("     " if index in (4, 9, 14) else "") + f" {value:14.4f}" for index, value in enumerate(values)]
    return f"ENERGY: {step:7d}" + "".join(cells)


def assert_fatal(result: subprocess.CompletedProcess[str], *messages: str) -> None:
    assert result.returncode == 1, result.stdout
    assert "FATAL ERROR:" in result.stdout
    for message in messages:
        assert message in result.stdout
    assert "ENERGY:" not in result.stdout


# ------------------------------------------------------------------------------------- a full job


def test_a_periodic_job_minimizes_runs_and_logs_like_namd(system: Path) -> None:
    result = run_engine(system, name="pbc.namd", args=("+p", "2", "+setcpuaffinity", "++ppn", "2", "+devices", "0"))

    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stdout
    lines = log.splitlines()
    assert "Info: NAMD 3.0.1 for Linux-x86_64-multicore-CUDA" in lines
    assert "Info: Running on 2 processors, 1 nodes, 1 physical nodes." in lines
    assert "Info: STRUCTURE FILE         water.psf" in lines
    assert "Info: PARAMETERS             par_water.prm" in lines
    assert "Info: TIMESTEP               2" in lines
    assert "Info: STRUCTURE SUMMARY:" in lines
    assert f"Info: {ATOMS} ATOMS" in lines
    assert lines.index("TCL: Minimizing for 100 steps") < lines.index("TCL: Running for 200 steps")
    assert next(line for line in lines if line.startswith("ETITLE:")) == ETITLE_PERIODIC
    assert energy_steps(log) == MINIMIZE_STEPS + RUN_STEPS
    assert [int(m.group(1)) for line in lines if (m := TIMING.match(line))] == [50, 100, 150, 200, 250, 300]
    assert "WRITING COORDINATES TO DCD FILE water_out.dcd AT STEP 50" in lines
    assert "WRITING COORDINATES TO OUTPUT FILE AT STEP 300" in lines
    assert "WRITING VELOCITIES TO OUTPUT FILE AT STEP 300" in lines
    assert "WRITING EXTENDED SYSTEM TO OUTPUT FILE AT STEP 300" in lines
    assert WALLCLOCK.match(lines[-2])
    assert lines[-1] == "[Partition 0][Node 0] End of program"


def test_energy_lines_have_namds_exact_column_layout(system: Path) -> None:
    log = run_engine(system, name="pbc.namd").stdout

    energy_lines = [line for line in log.splitlines() if line.startswith("ENERGY:")]
    for line, row in zip(energy_lines, energy_table(log), strict=True):
        values = list(row.values())
        assert len(values) == 20
        assert line == namd_energy_line(int(values[0]), values[1:])


def test_etitle_repeats_every_ten_energy_outputs_and_each_line_is_followed_by_a_blank(system: Path) -> None:
    log = run_engine(system, name="pbc.namd").stdout

    lines = log.splitlines()
    title_steps = [int(lines[i + 2].split()[1]) for i, line in enumerate(lines) if line.startswith("ETITLE:")]
    assert title_steps == [0, 100, 100, 200, 300]  # each command's first output, then every 10 * outputEnergies
    assert all(lines[i + 1] == "" for i, line in enumerate(lines) if line.startswith(("ETITLE:", "ENERGY:")))


def test_without_a_periodic_cell_the_pressure_and_volume_columns_are_left_out(system: Path) -> None:
    result = run_engine(system)  # job.namd: no cell, no PME

    assert result.returncode == 0, result.stdout
    assert all(len(row) == 15 for row in energy_table(result.stdout))
    assert "VOLUME" not in result.stdout


def test_timing_lines_report_the_measured_time_and_the_hours_left(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), add=("outputTiming 20",)), speed="500")

    timings = [m.groups() for line in result.stdout.splitlines() if (m := TIMING.match(line))]
    assert [int(t[0]) for t in timings] == [20, 40, 80, 100, 120, 140]
    wall_per_step = [float(t[4]) for t in timings]
    assert all(0.0016 < per_step < 0.02 for per_step in wall_per_step)  # paced at 500 steps/s
    step, hours_left = int(timings[-1][0]), float(timings[-1][5])
    assert hours_left == pytest.approx(wall_per_step[-1] * (150 - step) / 3600, rel=0.01)


# ------------------------------------------------------------------------- pressure, benchmark, minimizer


def tensors(log: str, label: str) -> dict[int, list[float]]:
    """The 3x3 tensors (row by row) of one kind of line, e.g. "PRESSURE", by step."""
    rows = [line.split()[1:] for line in log.splitlines() if line.startswith(f"{label}: ")]
    return {int(row[0]): [float(value) for value in row[1:]] for row in rows}


def test_outputpressure_prints_pressure_tensors_like_namd(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("pbc.namd"), add=("outputPressure 20",)))

    assert result.returncode == 0, result.stdout
    log = result.stdout
    pressure, group = tensors(log, "PRESSURE"), tensors(log, "GPRESSURE")
    # every minimizer step, then every outputPressure steps of the run
    assert list(pressure) == [*range(101), *range(120, 301, 20)]
    assert list(group) == list(pressure)
    assert list(tensors(log, "PRESSAVG")) == list(tensors(log, "GPRESSAVG")) == list(range(120, 301, 20))
    assert all(len(tensor) == 9 for tensor in [*pressure.values(), *group.values()])
    assert all(t[1] == t[3] and t[2] == t[6] and t[5] == t[7] for t in pressure.values())  # symmetric
    energies = {int(row["TS"]): row for row in energy_table(log)[len(MINIMIZE_STEPS) :]}
    for step in range(120, 301, 20):  # the energy's PRESSURE column is the tensor's trace / 3
        assert sum(pressure[step][0::4]) / 3 == pytest.approx(energies[step]["PRESSURE"], abs=0.01)
        assert sum(group[step][0::4]) / 3 == pytest.approx(energies[step]["GPRESSURE"], abs=0.01)
    lines = log.splitlines()
    first = {
        prefix: next(i for i, line in enumerate(lines) if line.startswith(prefix))
        for prefix in ("PRESSURE: 120 ", "GPRESSAVG: 120 ", "ENERGY:     120 ")
    }
    assert first["PRESSURE: 120 "] < first["GPRESSAVG: 120 "] < first["ENERGY:     120 "]  # NAMD's order


def test_without_a_periodic_cell_the_pressure_tensors_are_zero(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), add=("outputPressure 50",)))

    assert result.returncode == 0, result.stdout
    assert set(map(tuple, tensors(result.stdout, "PRESSURE").values())) == {(0.0,) * 9}


def test_namd_reports_its_initial_then_benchmark_speed_at_multiples_of_firstldbstep(system: Path) -> None:
    config = configure(fixture_config("job.namd"), drop=("minimize",), add=("firstLdbStep 10",))
    result = run_engine(system, config, args=("+p3",), speed="1000")

    assert result.returncode == 0, result.stdout
    speeds = [line for line in result.stdout.splitlines() if re.match(r"^Info: (Initial|Benchmark) time:", line)]
    assert [line.split()[1] for line in speeds] == ["Initial"] * 3 + ["Benchmark"] * 6
    for line in speeds:
        match = re.fullmatch(rf"Info: \w+ time: 3 CPUs ({G}) s/step ({G}) days/ns {G} MB memory", line)
        assert match is not None, line
        seconds_per_step, days_per_ns = float(match.group(1)), float(match.group(2))
        assert 0.0008 < seconds_per_step < 0.01  # paced at 1000 steps/s
        assert days_per_ns == pytest.approx(seconds_per_step / 86400 / 1e-6, rel=1e-4)  # 1 fs steps


@pytest.mark.parametrize(("program", "performance_lines"), [("namd2", 0), ("namd3", 6)])
def test_only_namd3_prints_performance_lines(system: Path, program: str, performance_lines: int) -> None:
    result = run_engine(system, name="pbc.namd", program=program)

    assert result.returncode == 0, result.stdout
    assert result.stdout.count("\nPERFORMANCE: ") == performance_lines


def test_minimization_prints_the_conjugate_gradient_minimizers_lines(system: Path) -> None:
    config = configure(fixture_config("job.namd"), drop=("run",), commands=("minimize 20", "run 20"))
    log = run_engine(system, config).stdout

    minimizing, running = log.split("TCL: Running for 20 steps")
    assert "MINIMIZER" not in running
    minimizer = [line for line in minimizing.splitlines() if "MINIMIZER" in line]
    reducing = [line for line in minimizer if line.startswith("LINE MINIMIZER REDUCING GRADIENT FROM ")]
    assert minimizer[:4] == [
        "MINIMIZER SLOWLY MOVING 1 ATOMS WITH BAD CONTACTS DOWNHILL",
        "MINIMIZER SLOWLY MOVING 1 ATOMS WITH BAD CONTACTS DOWNHILL",
        "MINIMIZER STARTING CONJUGATE GRADIENT ALGORITHM",
        reducing[0],
    ]
    assert len(reducing) == 10 + 4  # line searches from steps 2, 7, ... 47 of minimize 50, then 50, 55, 60, 65
    restarts = [line for line in minimizer if "RESTARTING" in line]
    assert restarts == ["MINIMIZER RESTARTING CONJUGATE GRADIENT ALGORITHM"] * 4  # after 2 searches per command
    assert sum("SLOWLY MOVING" in line for line in minimizer) == 2  # the second command starts relaxed
    gradients = [(float(line.split()[5]), float(line.split()[7])) for line in reducing]
    assert all(target == pytest.approx(start * 1e-3, rel=1e-4) for start, target in gradients)
    assert all(later[0] < earlier[0] for earlier, later in itertools.pairwise(gradients))
    brackets = [line for line in minimizer if line.startswith("LINE MINIMIZER BRACKET: ")]
    assert len(brackets) == len(reducing)
    assert all(re.fullmatch(rf"LINE MINIMIZER BRACKET: DX {G} {G} DU {G} {G} DUDX {G} {G} {G} ", b) for b in brackets)


# ------------------------------------------------------------------------------------ output files


def read_binary_vectors(path: Path) -> tuple[int, list[float]]:
    data = path.read_bytes()
    (count,) = struct.unpack("<i", data[:4])
    assert len(data) == 4 + 24 * count
    return count, list(struct.unpack(f"<{3 * count}d", data[4:]))


def test_coordinates_and_velocities_are_namd_binary_files_with_the_psf_atom_count(system: Path) -> None:
    run_engine(system, name="pbc.namd")

    coor_count, coordinates = read_binary_vectors(system / "water_out.coor")
    vel_count, velocities = read_binary_vectors(system / "water_out.vel")
    assert coor_count == vel_count == ATOMS
    assert (system / "water_out.coor").stat().st_size == 4 + 24 * ATOMS
    pdb = [0.0, 0.0, 0.0, 0.957, 0.0, 0.0, -0.240, 0.927, 0.0]  # water.pdb, moved a little
    assert coordinates != pdb
    assert coordinates == pytest.approx(pdb, abs=0.5)
    assert any(velocities)


def test_the_extended_system_file_has_namds_shape(system: Path) -> None:
    run_engine(system, name="pbc.namd")

    header, labels, values = (system / "water_out.xsc").read_text().splitlines()
    assert header == "# NAMD extended system configuration output file"
    assert labels.startswith("#$LABELS step a_x a_y a_z b_x b_y b_z c_x c_y c_z o_x o_y o_z")
    fields = dict(zip(labels.split()[1:], map(float, values.split()), strict=True))
    assert fields["step"] == 300
    assert (fields["a_x"], fields["b_y"], fields["c_z"]) == (30.0, 30.0, 30.0)
    xst = (system / "water_out.xst").read_text().splitlines()
    assert [int(line.split()[0]) for line in xst[2:]] == [50, 100, 150, 200, 250, 300]


def test_the_dcd_file_is_a_charmm_trajectory_with_a_frame_every_dcdfreq_steps(system: Path) -> None:
    run_engine(system, name="pbc.namd")

    data = (system / "water_out.dcd").read_bytes()
    marker, cord, frames, first_step, period, last_step = struct.unpack("<i4s4i", data[:24])
    assert (marker, cord, frames, first_step, period, last_step) == (84, b"CORD", 6, 50, 50, 300)
    (unit_cell,) = struct.unpack("<i", data[48:52])
    assert unit_cell == 1
    header_size = (8 + 84) + (8 + 164) + (8 + 4)  # control record, title record, atom count record
    assert struct.unpack("<3i", data[header_size - 12 : header_size]) == (4, ATOMS, 4)
    frame_size = (8 + 48) + 3 * (8 + 4 * ATOMS)  # unit cell record, then x, y and z records
    assert len(data) == header_size + 6 * frame_size
    cell = struct.unpack("<6d", data[header_size + 4 : header_size + 52])
    assert (cell[0], cell[2], cell[5]) == (30.0, 30.0, 30.0)


def test_restart_files_are_written_every_restartfreq_steps(system: Path) -> None:
    log = run_engine(system, name="pbc.namd").stdout

    written = [int(line.split()[-1]) for line in log.splitlines() if line.startswith("WRITING COORDINATES TO RESTART")]
    assert written == [100, 200, 300]
    assert log.count("FINISHED WRITING RESTART VELOCITIES") == 3
    assert read_binary_vectors(system / "water_out.restart.coor")[0] == ATOMS
    assert read_binary_vectors(system / "water_out.restart.vel")[0] == ATOMS
    assert (system / "water_out.restart.xsc").read_text().splitlines()[2].split()[0] == "300"
    assert (system / "water_out.restart.coor.old").exists()  # NAMD keeps the previous restart


def test_without_binary_output_the_coordinates_are_a_pdb_file(system: Path) -> None:
    run_engine(system, configure(fixture_config("job.namd"), add=("binaryOutput no",)))

    records = [line for line in (system / "out.coor").read_text().splitlines() if line.startswith("ATOM")]
    assert len(records) == ATOMS
    assert records[0][12:16] == "OH2 "


# ------------------------------------------------------------------------------------------ energies


def test_minimization_lowers_the_potential_energy_without_kinetic_energy(system: Path) -> None:
    rows = energy_table(run_engine(system, name="pbc.namd").stdout)

    minimization = rows[: len(MINIMIZE_STEPS)]
    potentials = [row["POTENTIAL"] for row in minimization]
    assert all(later < earlier for earlier, later in itertools.pairwise(potentials))
    assert potentials[-1] < 0.5 * potentials[0]
    assert all(row["KINETIC"] == row["TEMP"] == 0.0 for row in minimization)


def test_dynamics_fluctuate_around_the_thermostat_temperature(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("pbc.namd"), drop=("run",), commands=("run 2000",)))

    dynamics = energy_table(result.stdout)[len(MINIMIZE_STEPS) :]
    temperatures = [row["TEMP"] for row in dynamics]
    assert len(set(temperatures)) > 100
    assert sum(temperatures) / len(temperatures) == pytest.approx(300, rel=0.05)
    dof = int(re.search(r"^Info: (\d+) DEGREES OF FREEDOM$", result.stdout, re.M).group(1))
    for row in dynamics:
        assert row["KINETIC"] == pytest.approx(0.5 * dof * BOLTZMANN * row["TEMP"], abs=2e-4)
        assert row["TOTAL"] == pytest.approx(row["POTENTIAL"] + row["KINETIC"], abs=2e-4)
        assert row["VOLUME"] == pytest.approx(27000, rel=0.02)
    assert dynamics[-1]["ELECT"] < 0 < dynamics[-1]["BOND"]


def test_energies_are_deterministic_for_a_seed_and_differ_for_another(system: Path) -> None:
    def energy_lines(seed: int) -> list[str]:
        config = configure(fixture_config("pbc.namd"), drop=("seed",), add=(f"seed {seed}",))
        return [line for line in run_engine(system, config).stdout.splitlines() if line.startswith("ENERGY:")]

    first = energy_lines(7)
    assert energy_lines(7) == first
    assert energy_lines(8) != first


def test_without_a_seed_repeated_runs_are_identical(system: Path) -> None:
    first, second = run_engine(system).stdout, run_engine(system).stdout  # job.namd sets no seed

    assert "Info: RANDOM NUMBER SEED     12345" in first
    assert energy_table(first) == energy_table(second)
    assert len(energy_table(first)) == 17


def test_firsttimestep_offsets_the_step_numbers(system: Path) -> None:
    config = configure(
        fixture_config("job.namd"), drop=("minimize", "run"), add=("firsttimestep 1000",), commands=("run 50",)
    )
    result = run_engine(system, config)

    assert result.returncode == 0, result.stdout
    assert energy_steps(result.stdout) == [1000, 1010, 1020, 1030, 1040, 1050]
    assert "WRITING COORDINATES TO OUTPUT FILE AT STEP 1050" in result.stdout
    assert (system / "out.xsc").read_text().splitlines()[2].split()[0] == "1050"


def test_a_job_restarts_from_the_binary_outputs_of_an_earlier_one(system: Path) -> None:
    run_engine(system, name="pbc.namd")
    restart = configure(
        fixture_config("pbc.namd"),
        drop=(
            "temperature",
            "cellBasisVector1",
            "cellBasisVector2",
            "cellBasisVector3",
            "cellOrigin",
            "outputName",
            "minimize",
            "reinitvels",
            "run",
        ),
        add=(
            "bincoordinates water_out.coor",
            "binvelocities water_out.vel",
            "extendedSystem water_out.xsc",
            "outputName second",
            "firsttimestep 300",
        ),
        commands=("run 100",),
    )

    result = run_engine(system, restart, name="restart.namd")

    assert result.returncode == 0, result.stdout
    assert "Info: PERIODIC CELL BASIS 1  30 0 0" in result.stdout  # the cell came from the .xsc file
    assert "Info: VELOCITY FILE          water_out.vel" in result.stdout
    assert energy_steps(result.stdout)[0] == 300
    assert read_binary_vectors(system / "second.coor")[0] == ATOMS


# ------------------------------------------------------------------------------------- config syntax


def test_keywords_are_case_insensitive_and_comments_assignments_and_set_variables_work(system: Path) -> None:
    # Keywords are case-insensitive; commands are Tcl commands, so `run` and `minimize` are lower-case as in NAMD
    config = """\
# a whole-line comment
set temp 310
STRUCTURE          water.psf    # a trailing comment
Coordinates        water.pdb
parameters=par_water.prm
paratypecharmm     ON
temperature        $temp

OUTPUTNAME         = out
outputenergies     =25
Exclude            scaled1-4
CUTOFF             12
minimize           50
run                100
"""
    result = run_engine(system, config)

    assert result.returncode == 0, result.stdout
    assert "Info: INITIAL TEMPERATURE    310" in result.stdout
    assert energy_steps(result.stdout) == [0, 25, 50, 50, 75, 100, 125, 150]
    assert (system / "out.coor").exists()


def test_parameters_set_between_commands_apply_to_the_next_command(system: Path) -> None:
    config = configure(fixture_config("job.namd"), drop=("run",), commands=("outputEnergies 50", "run 100"))
    result = run_engine(system, config)

    assert result.returncode == 0, result.stdout
    assert "TCL: Setting parameter outputEnergies to 50" in result.stdout
    assert energy_steps(result.stdout) == [0, 10, 20, 30, 40, 50, 50, 100, 150]


def test_without_run_commands_numsteps_runs_to_that_step(system: Path) -> None:
    config = configure(fixture_config("job.namd"), drop=("minimize", "run"), add=("numsteps 30",))
    result = run_engine(system, config)

    assert result.returncode == 0, result.stdout
    assert energy_steps(result.stdout) == [0, 10, 20, 30]
    assert "TCL:" not in result.stdout.replace("TCL: Suspending until startup complete.", "")  # no Tcl run command


def test_relative_paths_are_relative_to_the_config_files_directory(system: Path) -> None:
    result = run_engine(system, name="system/job.namd", cwd=system.parent)

    assert result.returncode == 0, result.stdout
    assert "Info: Changed directory to system" in result.stdout
    assert (system / "out.coor").exists()
    assert not (system.parent / "out.coor").exists()


# ----------------------------------------------------------------------------------- fatal errors


def test_an_unknown_keyword_is_a_fatal_configuration_error(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), add=("fooBar 1",)))

    assert_fatal(result, "ERROR:    fooBar", "FATAL ERROR: ERROR(S) IN THE CONFIGURATION FILE")
    assert "Reason: FATAL ERROR" in result.stderr


@pytest.mark.parametrize("keyword", ["structure", "coordinates", "parameters", "outputName", "exclude", "cutoff"])
def test_a_missing_required_keyword_is_fatal(system: Path, keyword: str) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), drop=(keyword,)))

    assert_fatal(result, f"ERROR: '{keyword.lower()}' is a required configuration option")


def test_a_job_needs_a_temperature_or_velocities(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), drop=("temperature",)))

    assert_fatal(result, "FATAL ERROR: Must have either an initial temperature or a velocity file")


def test_a_job_needs_something_to_do(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), drop=("minimize", "run")))

    assert_fatal(result, "ERROR: 'numsteps' is a required configuration option")


def test_a_keyword_given_twice_is_fatal(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), add=("outputEnergies 5",)))

    assert_fatal(result, "ERROR: Multiple definitions of 'outputEnergies'")


def test_an_unreadable_number_or_flag_is_fatal(system: Path) -> None:
    result = run_engine(
        system,
        configure(
            fixture_config("job.namd"),
            drop=("outputEnergies", "paraTypeCharmm"),
            add=("outputEnergies ten", "paraTypeCharmm maybe"),
        ),
    )

    assert_fatal(
        result,
        "ERROR: Expecting only a number for 'outputEnergies' input, got: ten",
        "ERROR: ParseOptions can't understand 'maybe' for the",
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("structure missing.psf", "UNABLE TO OPEN .psf FILE missing.psf"),
        ("coordinates missing.pdb", "Cannot open file 'missing.pdb' for input in PDB::PDB."),
        ("parameters missing.prm", "UNABLE TO OPEN CHARMM PARAMETER FILE missing.prm"),
        ("bincoordinates missing.coor", "Unable to open binary file missing.coor"),
        ("binvelocities missing.vel", "Unable to open binary file missing.vel"),
        ("extendedSystem missing.xsc", "Unable to open extended system file."),
    ],
)
def test_a_missing_input_file_is_fatal(system: Path, line: str, message: str) -> None:
    keyword = line.split()[0]
    drop = (keyword, "temperature") if keyword == "binvelocities" else (keyword,)
    result = run_engine(system, configure(fixture_config("job.namd"), drop=drop, add=(line,)))

    assert_fatal(result, message)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (("extraBonds on", "extraBondsFile missing.txt"), "UNABLE TO OPEN EXTRA BONDS FILE missing.txt"),
        (("constraints on", "consref missing.pdb", "conskfile water.pdb"), "Cannot open file 'missing.pdb'"),
        (("colvars on", "colvarsConfig missing.in"), "Unable to open text file missing.in"),
    ],
)
def test_a_missing_file_of_an_enabled_feature_is_fatal(system: Path, lines: tuple[str, ...], message: str) -> None:
    assert_fatal(run_engine(system, configure(fixture_config("job.namd"), add=lines)), message)
    assert (
        run_engine(system, configure(fixture_config("job.namd"), add=(lines[0].split()[0] + " off",))).returncode == 0
    )


def test_pme_without_a_periodic_cell_is_fatal(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), add=("PME on",)))

    assert_fatal(result, "FATAL ERROR: PME requires periodic boundary conditions.")


def test_pdb_and_psf_atom_counts_must_agree(system: Path) -> None:
    pdb = system / "water.pdb"
    pdb.write_text("".join(line for line in pdb.read_text().splitlines(keepends=True) if " H2 " not in line))

    assert_fatal(run_engine(system), "FATAL ERROR: Number of pdb and psf atoms are not the same!")


def test_binary_coordinates_must_have_the_psf_atom_count(system: Path) -> None:
    (system / "four.coor").write_bytes(struct.pack("<i", 4) + struct.pack("<12d", *range(12)))
    result = run_engine(system, configure(fixture_config("job.namd"), add=("bincoordinates four.coor",)))

    assert_fatal(result, "FATAL ERROR: Incorrect atom count in binary file four.coor")


def test_a_tcl_error_is_fatal_with_tcls_error_info(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), add=("source other.namd",)))

    assert_fatal(
        result,
        'FATAL ERROR: couldn\'t read file "other.namd": no such file or directory\n'
        '    while executing\n"source other.namd"\n    (file "job.namd" line 1)',
    )


def test_an_undefined_variable_is_fatal(system: Path) -> None:
    result = run_engine(system, configure(fixture_config("job.namd"), drop=("temperature",), add=("temperature $t",)))

    assert_fatal(result, 'FATAL ERROR: can\'t read "t": no such variable')


# --------------------------------------------------------------------------------- the command line


def test_a_missing_config_file_is_fatal(system: Path) -> None:
    assert_fatal(run_engine(system, name="nothere.namd"), "FATAL ERROR: Unable to access config file nothere.namd")


def test_no_config_file_is_fatal() -> None:
    result = subprocess.run(
        [sys.executable, str(ENGINE), "+p2"], capture_output=True, text=True, timeout=60, check=False
    )

    assert_fatal(result, "No simulation config file specified on command line.")


def test_version_prints_a_banner() -> None:
    result = subprocess.run(
        [sys.executable, str(ENGINE), "--version"], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0
    assert result.stdout.startswith("NAMD 3.0.1 for Linux-x86_64-multicore (")


def test_a_bad_speed_setting_is_fatal(system: Path) -> None:
    assert_fatal(run_engine(system, speed="fast"), "NAMD_STANDIN_STEPS_PER_SECOND")


@pytest.mark.parametrize(
    ("program", "args", "banner", "charm"),
    [
        ("namd2", (), "Info: NAMD 2.14 for Linux-x86_64-multicore", "v6.10.2"),
        ("namd2", ("+devices", "0"), "Info: NAMD 2.14 for Linux-x86_64-multicore-CUDA", "v6.10.2"),
        ("namd3", ("+p2",), "Info: NAMD 3.0.1 for Linux-x86_64-multicore", "v7.0.0"),
        ("namd3", ("+devices", "0,1"), "Info: NAMD 3.0.1 for Linux-x86_64-multicore-CUDA", "v7.0.0"),
    ],
)
def test_the_program_name_picks_the_version_and_devices_a_cuda_build(
    system: Path, program: str, args: tuple[str, ...], banner: str, charm: str
) -> None:
    result = run_engine(system, program=program, args=args)

    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert banner in lines
    assert f"Converse/Charm++ Commit ID: {charm}" in lines
    bindings = [
        m.group(1)
        for line in lines
        if (m := re.match(r"^Info: Pe \d+ physical rank \d+ binding to CUDA device (\d+) on ", line))
    ]
    devices = args[1].split(",") if "+devices" in args else []
    assert bindings == devices
    assert ("Info: Built with CUDA version 12020" in lines) is bool(devices)


def test_gpu_resident_mode_needs_namd3_with_devices(system: Path) -> None:
    config = configure(fixture_config("pbc.namd"), add=("CUDASOAintegrate on",))

    gpu = run_engine(system, config, program="namd3", args=("+devices", "0"))
    cpu = run_engine(system, config, program="namd3")
    namd2 = run_engine(system, config, program="namd2", args=("+devices", "0"))

    assert gpu.returncode == cpu.returncode == 0, gpu.stdout + cpu.stdout
    assert "Info: CUDASOA integration enabled" in gpu.stdout.splitlines()
    assert energy_steps(gpu.stdout) == MINIMIZE_STEPS + RUN_STEPS  # same ETITLE/ENERGY/TIMING lines as on CPUs
    assert "CUDASOA" not in cpu.stdout
    assert_fatal(namd2, "ERROR:    CUDASOAintegrate", "FATAL ERROR: ERROR(S) IN THE CONFIGURATION FILE")


# ------------------------------------------------------------------------------- pacing and signals


def test_the_speed_setting_paces_the_run(system: Path) -> None:
    config = configure(fixture_config("job.namd"), drop=("minimize", "run"), commands=("run 200",))

    started = time.monotonic()
    result = run_engine(system, config, speed="1000")
    elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stdout
    assert elapsed >= 0.19  # 200 steps at 1000 steps/s


def test_sigterm_mid_run_exits_non_zero_and_the_log_keeps_what_was_written(system: Path) -> None:
    config = configure(fixture_config("job.namd"), drop=("minimize", "run"), commands=("run 1000000",))
    (system / "job.namd").write_text(config)
    log_path = system / "job.log"
    env = {**os.environ, "NAMD_STANDIN_STEPS_PER_SECOND": "200"}
    with log_path.open("w") as log_file:  # a file, as under SLURM: no pipe that would flush at exit
        process = subprocess.Popen(
            [sys.executable, str(ENGINE), "+p1", "job.namd"],
            cwd=system,
            env=env,
            stdout=log_file,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while log_path.read_text().count("ENERGY:") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == -signal.SIGTERM
    log = log_path.read_text()
    assert log.count("ENERGY:") >= 3
    assert log.endswith("\n")
    assert "WallClock:" not in log
    assert "Caught Signal" in stderr
