"""The NAMD log reader on the shapes of NAMD 2.x and 3.x logs, CPU and GPU builds.

Every log is one the stand-in engine wrote (tests/fixtures/namd/logs, see the README there); the values
asserted are read off those files. Logs cut mid-line or appended to by a second run are made from them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.namd_log import LogProgress

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "namd" / "logs"
PERIODIC_TITLES = [
    "TS",
    "BOND",
    "ANGLE",
    "DIHED",
    "IMPRP",
    "ELECT",
    "VDW",
    "BOUNDARY",
    "MISC",
    "KINETIC",
    "TOTAL",
    "TEMP",
    "POTENTIAL",
    "TOTAL3",
    "TEMPAVG",
    "PRESSURE",
    "GPRESSURE",
    "VOLUME",
    "PRESSAVG",
    "GPRESSAVG",
]
RECORDED = sorted(path.name for path in LOGS.glob("*.log"))


def log_bytes(name: str) -> bytes:
    return (LOGS / name).read_bytes()


def read(data: bytes) -> LogProgress:
    progress = LogProgress()
    progress.feed(data)
    return progress


def stored(progress: LogProgress) -> LogProgress:
    """The progress as the portal keeps it between two syncs: through JSON and back."""
    return LogProgress.from_state(json.loads(json.dumps(progress.to_state(), allow_nan=False)))


def test_namd2_cpu_npt_dynamics_with_pme_and_pressure_output() -> None:
    data = log_bytes("namd2_npt_pme.log")
    progress = read(data)

    assert (progress.namd_version, progress.namd_platform) == ("2.14", "Linux-x86_64-multicore")
    assert progress.is_gpu_build is False
    assert (progress.first_step, progress.last_step, progress.total_steps) == (0, 400, 400)
    assert progress.fraction_done == 1.0
    assert progress.has_finished is True
    assert progress.wallclock_s == 0.410652
    assert progress.timestep_fs == 2.0
    assert progress.timing_lines == 8
    assert progress.seconds_per_step == 0.00100518
    # NAMD 2 prints no PERFORMANCE lines: the speed is the last "Benchmark time", 0.00582488 days/ns
    assert progress.ns_per_day == pytest.approx(1 / 0.00582488)
    assert progress.energy_titles == PERIODIC_TITLES
    assert len(progress.energies) == 41
    assert progress.energy_series("TOTAL")[0] == (0, 19.6550)
    assert progress.energy_series("VOLUME")[-1] == (400, 27028.6907)
    assert progress.energy_series("GPRESSAVG")[-1] == (400, 32.6599)
    assert progress.pressure_step == 400
    assert progress.pressure_tensor == [
        543.363,
        58.8917,
        103.622,
        58.8917,
        325.169,
        -70.1291,
        103.622,
        -70.1291,
        408.921,
    ]
    assert progress.group_pressure_tensor == [
        956.329,
        -27.348,
        31.2802,
        -27.348,
        657.987,
        -27.2146,
        31.2802,
        -27.2146,
        810.194,
    ]
    assert progress.minimizer_line_searches == 0
    assert (progress.fatal_errors, progress.error_lines) == ([], [])


def test_repeated_etitle_headers_neither_duplicate_nor_reset_the_energy_series() -> None:
    data = log_bytes("namd2_npt_pme.log")
    assert data.count(b"\nETITLE:") == 5  # steps 0, 100, 200, 300 and 400

    progress = read(data)

    assert progress.energy_titles == PERIODIC_TITLES
    assert [step for step, _ in progress.energy_series("TEMP")] == list(range(0, 401, 10))


def test_namd2_minimization_counts_line_searches_between_energies_on_every_step() -> None:
    progress = read(log_bytes("namd2_minimize.log"))

    assert (progress.namd_version, progress.is_gpu_build) == ("2.14", False)
    assert (progress.first_step, progress.last_step, progress.total_steps) == (0, 40, 40)
    assert progress.has_finished is True
    assert progress.minimizer_line_searches == 8
    assert progress.energy_titles == PERIODIC_TITLES[:15]  # no periodic cell: no pressure or volume columns
    potential = progress.energy_series("POTENTIAL")
    assert [step for step, _ in potential] == list(range(41))
    assert (potential[0], potential[-1]) == ((0, 17.6651), (40, 4.9097))
    assert {value for _, value in progress.energy_series("TEMP")} == {0.0}
    # neither PERFORMANCE nor benchmark lines in 40 steps: the speed comes from the first TIMING line
    assert progress.ns_per_day == pytest.approx(1.0 * 1e-6 * 86400 / 0.00101318)
    assert progress.pressure_tensor is None


def test_namd3_gpu_resident_run_without_run_commands_uses_numsteps() -> None:
    data = log_bytes("namd3_gpu_resident.log")
    assert b"TCL: Running" not in data

    progress = read(data)

    assert (progress.namd_version, progress.namd_platform) == ("3.0.1", "Linux-x86_64-multicore-CUDA")
    assert progress.is_gpu_build is True
    assert (progress.total_steps, progress.numsteps) == (0, 2000)
    assert (progress.first_step, progress.last_step) == (0, 2000)
    assert progress.fraction_done == 1.0
    assert progress.ns_per_day == 345.524  # the last PERFORMANCE line
    assert progress.energy_titles == PERIODIC_TITLES
    assert [step for step, _ in progress.energy_series("TOTAL")] == list(range(0, 2001, 100))
    assert progress.energy_series("TEMP")[-1] == (2000, 298.6057)
    assert progress.has_finished is True


def test_a_gpu_resident_config_run_by_namd2_ends_with_its_errors_and_a_fatal_error() -> None:
    progress = read(log_bytes("namd2_gpu_config_fatal.log"))

    assert (progress.namd_version, progress.is_gpu_build) == ("2.14", True)
    assert progress.fatal_errors == ["FATAL ERROR: ERROR(S) IN THE CONFIGURATION FILE"]
    assert progress.error_lines == [
        "ERROR: The following variables were set in the",
        "ERROR: configuration file but are NOT VALID",
        "ERROR:    CUDASOAintegrate",
    ]
    assert progress.has_finished is False
    assert progress.fraction_done is None
    assert progress.energies == []


def test_a_fatal_error_after_a_run_keeps_that_runs_progress() -> None:
    progress = read(log_bytes("namd3_fatal_after_run.log"))

    assert progress.fatal_errors == ["FATAL ERROR: Setting parameter coordinates from script failed!"]
    assert progress.has_finished is False
    assert (progress.total_steps, progress.last_step) == (100, 100)  # the second run never started
    assert len(progress.energies) == 11
    assert progress.ns_per_day == 86.0626  # the PERFORMANCE line after step 100's "Initial time" line


def test_a_log_cut_mid_line_while_namd_writes_reads_on_when_the_rest_arrives() -> None:
    data = log_bytes("namd2_npt_pme.log")
    line_start = data.index(b"\nENERGY:     210 ") + 1
    cut = line_start + 40  # inside the step 210 energies

    progress = stored(read(data[:cut]))

    assert progress.offset == cut
    assert progress.partial_line == data[line_start:cut].decode()
    assert progress.last_step == 200
    assert len(progress.energies) == 21
    assert progress.fraction_done == 0.5
    assert progress.has_finished is False
    progress.feed(data[cut:])
    assert progress.energy_series("TOTAL")[21] == (210, 15.9071)
    assert progress.to_state() == read(data).to_state()


def test_a_cut_inside_a_pressure_line_waits_for_the_whole_tensor() -> None:
    data = log_bytes("namd2_npt_pme.log")
    cut = data.index(b"\nGPRESSURE: 400 ") + 20

    progress = stored(read(data[:cut]))

    assert progress.pressure_step == 400
    assert progress.pressure_tensor is not None
    assert progress.pressure_tensor[0] == 543.363
    assert progress.group_pressure_tensor is not None
    assert progress.group_pressure_tensor[0] == 588.138  # step 360's until step 400's line is whole
    progress.feed(data[cut:])
    assert progress.group_pressure_tensor[0] == 956.329


def test_a_second_run_appended_to_the_log_with_other_energy_columns_keeps_both_series() -> None:
    minimize, npt = log_bytes("namd2_minimize.log"), log_bytes("namd2_npt_pme.log")

    progress = read(minimize)
    assert progress.has_finished is True
    progress.feed(npt[: npt.index(b"TCL: Running")])
    assert progress.has_finished is False  # the second run's banner: it is running again
    progress.feed(npt[npt.index(b"TCL: Running") :])

    assert progress.energy_titles == PERIODIC_TITLES  # 20 columns now, 15 before
    assert len(progress.energies) == 41 + 41
    assert progress.energy_series("POTENTIAL")[40] == (40, 4.9097)  # the minimization's, still by name
    assert progress.energy_series("VOLUME")[0] == (0, 26990.9911)  # the pressure columns start with the NPT run
    assert len(progress.energy_series("VOLUME")) == 41
    assert progress.total_steps == 40 + 400
    assert progress.has_finished is True


@pytest.mark.parametrize("name", RECORDED)
@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=30000), max_size=30))
def test_any_chunks_of_a_recorded_log_read_like_the_whole_log(name: str, cuts: list[int]) -> None:
    data = log_bytes(name)
    progress, position = LogProgress(), 0
    for cut in sorted(cuts):
        progress.feed(data[position:cut])
        position = max(position, cut)
        progress = stored(progress)
    progress.feed(data[position:])

    assert progress.to_state() == read(data).to_state()
    assert progress.offset == len(data)
