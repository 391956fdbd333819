"""The stand-in NAMD engine (test equipment): config checks, log shape, outputs, pacing, signals."""

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
TIMING_LINE = re.compile(
    r"^TIMING: (\d+)  CPU: [\d.e+-]+, [\d.e+-]+/step  Wall: [\d.e+-]+, [\d.e+-]+/step, "
    r"[\d.e+-]+ hours remaining, [\d.]+ kB of memory in use\.$"
)
BASE_CONFIG = """\
structure          water.psf
coordinates        water.pdb
parameters         par_water.prm
paraTypeCharmm     on
temperature        300
outputName         out
outputEnergies     10
outputTiming       50
exclude            scaled1-4
cutoff             12
timestep           1.0
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path


def run_engine(workdir: Path, config: str, *, speed: str = "0", args: tuple[str, ...] = ("+p2",)):
    (workdir / "job.namd").write_text(config)
    env = {**os.environ, "NAMD_STANDIN_STEPS_PER_SECOND": speed}
    return subprocess.run(
        [sys.executable, str(ENGINE), *args, "job.namd"], cwd=workdir, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def energy_rows(log: str) -> list[list[float]]:
    return [[float(v) for v in line.split()[1:]] for line in log.splitlines() if line.startswith("ENERGY:")]


def column(log: str, name: str) -> list[float]:
    titles = next(line.split()[1:] for line in log.splitlines() if line.startswith("ETITLE:"))
    index = titles.index(name)
    return [row[index] for row in energy_rows(log)]


def test_a_valid_system_minimizes_runs_and_writes_a_namd_shaped_log(workdir: Path) -> None:
    result = run_engine(workdir, BASE_CONFIG + "minimize 50\nrun 100\n")
    assert result.returncode == 0, result.stdout
    log = result.stdout
    assert "Info: 3 ATOMS" in log
    assert "TCL: Minimizing for 50 steps" in log
    assert "TCL: Running for 100 steps" in log
    steps = [int(row[0]) for row in energy_rows(log)]
    assert steps == [0, 10, 20, 30, 40, 50, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150]
    assert all(len(row) == 20 for row in energy_rows(log))
    timing_steps = [int(m.group(1)) for line in log.splitlines() if (m := TIMING_LINE.match(line))]
    assert timing_steps == [50, 100, 150]
    assert "WRITING COORDINATES TO OUTPUT FILE AT STEP 150" in log
    assert "WRITING VELOCITIES TO OUTPUT FILE AT STEP 150" in log
    assert re.search(r"^WallClock: [\d.]+  CPUTime: [\d.]+  Memory: [\d.]+ MB$", log, re.M)


def test_outputs_are_in_namd_binary_form_with_the_psf_atom_count(workdir: Path) -> None:
    assert run_engine(workdir, BASE_CONFIG + "run 20\n").returncode == 0
    for suffix in ("coor", "vel"):
        data = (workdir / f"out.{suffix}").read_bytes()
        assert len(data) == 4 + 24 * 3
        assert struct.unpack("<i", data[:4]) == (3,)
    xsc = (workdir / "out.xsc").read_text().splitlines()
    assert xsc[0] == "# NAMD extended system configuration output file"
    assert xsc[2].split()[0] == "20"


def test_minimization_lowers_the_potential_energy(workdir: Path) -> None:
    log = run_engine(workdir, BASE_CONFIG + "minimize 100\n").stdout
    potential = column(log, "POTENTIAL")
    assert potential[-1] < potential[0] / 5
    assert all(later <= earlier for earlier, later in itertools.pairwise(potential))


def test_dynamics_fluctuate_around_the_target_temperature(workdir: Path) -> None:
    log = run_engine(workdir, BASE_CONFIG + "outputEnergies 1\nrun 200\n").stdout
    temperatures = column(log, "TEMP")
    mean = sum(temperatures) / len(temperatures)
    assert 285 < mean < 315
    assert len(set(temperatures)) > 100


def test_energies_are_deterministic_for_a_seed_and_differ_between_seeds(workdir: Path) -> None:
    def energies(seed: int) -> list[list[float]]:
        return energy_rows(run_engine(workdir, BASE_CONFIG + f"seed {seed}\nrun 50\n").stdout)

    assert energies(7) == energies(7)
    assert energies(7) != energies(8)


def test_keywords_are_case_insensitive_and_comments_are_ignored(workdir: Path) -> None:
    config = BASE_CONFIG.replace("outputName", "OUTPUTNAME").replace("temperature", "Temperature")
    result = run_engine(workdir, "# a comment line\n" + config + "RUN 10   # trailing comment\n")
    assert result.returncode == 0, result.stdout
    assert (workdir / "out.coor").exists()


def test_firsttimestep_offsets_the_step_numbers(workdir: Path) -> None:
    log = run_engine(workdir, BASE_CONFIG + "firsttimestep 1000\nrun 30\n").stdout
    assert [int(row[0]) for row in energy_rows(log)] == [1000, 1010, 1020, 1030]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c + "fooBarKeyword 3\nrun 10\n", "FATAL ERROR: UNKNOWN PARAMETER: fooBarKeyword"),
        (
            lambda c: c.replace("outputName         out\n", "") + "run 10\n",
            "FATAL ERROR: Required parameter outputName",
        ),
        (
            lambda c: c.replace("water.pdb", "missing.pdb") + "run 10\n",
            "FATAL ERROR: Unable to open text file missing.pdb",
        ),
        (lambda c: c + "PME on\nrun 10\n", "FATAL ERROR: PME requires periodic boundary conditions."),
        (lambda c: c, "FATAL ERROR: No run or minimize command"),
        (lambda c: c + "set x 5\nrun 10\n", "FATAL ERROR: Tcl command 'set'"),
        (lambda c: c.replace("temperature        300\n", "") + "run 10\n", "FATAL ERROR: Must have either an initial"),
    ],
    ids=["unknown-keyword", "missing-required", "missing-file", "pme-without-cell", "nothing-to-do", "tcl", "no-temp"],
)
def test_bad_configs_are_fatal_errors_with_a_non_zero_exit(workdir: Path, change, message: str) -> None:
    result = run_engine(workdir, change(BASE_CONFIG))
    assert result.returncode == 1
    assert message in result.stdout
    assert not (workdir / "out.coor").exists()


def test_pme_with_a_periodic_cell_runs(workdir: Path) -> None:
    cell = "PME on\ncellBasisVector1 30 0 0\ncellBasisVector2 0 30 0\ncellBasisVector3 0 0 30\n"
    result = run_engine(workdir, BASE_CONFIG + cell + "run 10\n")
    assert result.returncode == 0, result.stdout
    assert "PARTICLE MESH EWALD (PME) ACTIVE" in result.stdout
    assert column(result.stdout, "VOLUME")[-1] == pytest.approx(27000.0)


def test_psf_and_pdb_atom_counts_must_agree(workdir: Path) -> None:
    pdb = workdir / "water.pdb"
    pdb.write_text("".join(line + "\n" for line in pdb.read_text().splitlines() if "H2" not in line))
    result = run_engine(workdir, BASE_CONFIG + "run 10\n")
    assert result.returncode == 1
    assert "FATAL ERROR: Number of pdb and psf atoms are not the same!" in result.stdout


def test_restart_and_dcd_files_are_written_at_their_frequencies(workdir: Path) -> None:
    log = run_engine(workdir, BASE_CONFIG + "restartfreq 20\ndcdfreq 10\nrun 40\n").stdout
    assert [int(n) for n in re.findall(r"WRITING COORDINATES TO RESTART FILE AT STEP (\d+)", log)] == [20, 40]
    assert len(re.findall(r"WRITING COORDINATES TO DCD FILE out.dcd AT STEP", log)) == 4
    assert len((workdir / "out.restart.coor").read_bytes()) == 4 + 24 * 3
    dcd = (workdir / "out.dcd").read_bytes()
    assert dcd[4:8] == b"CORD"
    assert struct.unpack("<i", dcd[8:12]) == (4,)  # frames in the header


def test_a_restart_continues_from_binary_coordinates_and_velocities(workdir: Path) -> None:
    assert run_engine(workdir, BASE_CONFIG + "run 20\n").returncode == 0
    config = BASE_CONFIG.replace("temperature        300\n", "").replace("outputName         out", "outputName next")
    result = run_engine(workdir, config + "bincoordinates out.coor\nbinvelocities out.vel\nfirsttimestep 20\nrun 20\n")
    assert result.returncode == 0, result.stdout
    assert (workdir / "next.coor").exists()


def test_the_speed_setting_paces_the_run(workdir: Path) -> None:
    started = time.monotonic()
    result = run_engine(workdir, BASE_CONFIG + "run 200\n", speed="1000")
    assert result.returncode == 0
    assert time.monotonic() - started >= 0.18


def test_sigterm_mid_run_exits_non_zero_and_keeps_the_log(workdir: Path) -> None:
    (workdir / "job.namd").write_text(BASE_CONFIG + "run 100000\n")
    env = {**os.environ, "NAMD_STANDIN_STEPS_PER_SECOND": "200"}
    log_path = workdir / "job.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen([sys.executable, str(ENGINE), "job.namd"], cwd=workdir, env=env, stdout=log_file)
        deadline = time.monotonic() + 20
        while "ENERGY:      20" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == -signal.SIGTERM
    log = log_path.read_text()
    assert "ENERGY:      20" in log
    assert "WallClock:" not in log


def test_charm_options_are_skipped_and_a_missing_config_is_fatal(workdir: Path) -> None:
    result = run_engine(workdir, BASE_CONFIG + "run 10\n", args=("+p", "2", "+devices", "0", "+setcpuaffinity"))
    assert result.returncode == 0, result.stdout
    missing = subprocess.run(
        [sys.executable, str(ENGINE), "+p2", "nope.namd"], cwd=workdir, capture_output=True, text=True
    )
    assert missing.returncode == 1
    assert "FATAL ERROR: Unable to open text file nope.namd" in missing.stdout
