"""The incremental NAMD log reader, fed logs the stand-in engine really wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.namd_log import LogProgress

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "namd"
ENGINE = Path(__file__).resolve().parents[2] / "scripts" / "localcluster" / "namd_standin.py"


def engine_log(tmp_path_factory: pytest.TempPathFactory, config: str) -> bytes:
    workdir = tmp_path_factory.mktemp("namd")
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        shutil.copy(FIXTURES / name, workdir / name)
    (workdir / "job.namd").write_text(config)
    env = {**os.environ, "NAMD_STANDIN_STEPS_PER_SECOND": "0"}
    return subprocess.run([sys.executable, str(ENGINE), "job.namd"], cwd=workdir, env=env, capture_output=True).stdout


@pytest.fixture(scope="module")
def finished_log(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return engine_log(tmp_path_factory, (FIXTURES / "pbc.namd").read_text())


@pytest.fixture(scope="module")
def fatal_log(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return engine_log(tmp_path_factory, (FIXTURES / "job.namd").read_text() + "fooBar 3\n")


def read_all(log: bytes) -> LogProgress:
    progress = LogProgress()
    progress.feed(log)
    return progress


def test_a_finished_run_reports_steps_speed_energies_and_wallclock(finished_log: bytes) -> None:
    progress = read_all(finished_log)
    energy_lines = [line for line in finished_log.decode().splitlines() if line.startswith("ENERGY:")]
    assert progress.has_finished is True
    assert progress.total_steps == 300  # minimize 100 + run 200 in pbc.namd
    assert progress.last_step == int(energy_lines[-1].split()[1])
    assert progress.fraction_done == 1.0
    assert progress.timestep_fs == 2.0
    assert progress.ns_per_day > 0
    assert progress.hours_remaining == 0.0
    assert progress.fatal_errors == []
    assert len(progress.energies) == len(energy_lines)
    total = progress.energy_series("TOTAL")
    assert total[0][0] == 0
    assert [step for step, _ in total] == [int(line.split()[1]) for line in energy_lines]


def test_a_fatal_error_is_kept_and_the_run_is_not_finished(fatal_log: bytes) -> None:
    progress = read_all(fatal_log)
    assert progress.has_finished is False
    assert any("FATAL ERROR" in line for line in progress.fatal_errors)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=40))
def test_reading_in_any_chunks_gives_the_same_result_as_reading_at_once(finished_log: bytes, cuts: list[int]) -> None:
    progress, position = LogProgress(), 0
    for size in cuts:
        progress.feed(finished_log[position : position + size])
        position += size
        progress = LogProgress.from_state(json.loads(json.dumps(progress.to_state())))  # as stored between syncs
    progress.feed(finished_log[position:])
    assert progress.to_state() == read_all(finished_log).to_state()
    assert progress.offset == len(finished_log)


def test_a_running_log_gives_progress_and_eta(finished_log: bytes) -> None:
    text = finished_log.decode()
    first_timing = text.index("TIMING:")
    running = text[: text.index("\n", first_timing) + 1].encode()
    progress = read_all(running)
    assert progress.has_finished is False
    assert progress.timing_lines == 1
    assert progress.hours_remaining is not None
    assert 0 < progress.fraction_done < 1


@pytest.mark.parametrize("unit", ["MB", "kB"])
def test_timing_lines_in_either_memory_unit(finished_log: bytes, unit: str) -> None:
    """Real NAMD prints MB; the issue's shape says kB: both are read (the engine's own line, unit swapped)."""
    real = next(line for line in finished_log.decode().splitlines() if line.startswith("TIMING:"))
    progress = LogProgress()
    progress.feed(b"Info: TIMESTEP 2\n" + real.replace(" MB of memory", f" {unit} of memory").encode() + b"\n")
    seconds_per_step = float(real.split("Wall: ")[1].split(", ")[1].removesuffix("/step"))
    assert progress.last_step == int(real.split()[1])
    assert progress.seconds_per_step == seconds_per_step
    assert progress.ns_per_day == pytest.approx(2.0 * 1e-6 * 86400 / seconds_per_step)
