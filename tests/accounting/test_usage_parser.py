"""clusters.slurm.usage without a cluster: the usage argv and sacct's rows, fed by outputs recorded on 22.05.

The recordings (tests/fixtures/slurm/22.05/usage_*.txt) are real; the mutated copies below change one thing
each and must fail, since a misread row would charge a member the wrong amount.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from datetime import datetime

import pytest

from clusters.slurm import (
    MAX_JOB_IDS_PER_COMMAND,
    SACCT_USAGE_FORMAT,
    AllocatedTres,
    PortalState,
    UnexpectedSlurmOutput,
    UsageQueryFailed,
    build_usage_argv,
    parse_alloc_tres,
    parse_usage_output,
)
from tests.clusters.test_slurm_parsers import load

FINISHED_IDS = ["5562", "5563", "5564", "5565", "5566", "5567"]


def test_the_argv_is_the_recorded_command() -> None:
    recording = load("usage_finished.txt")
    assert build_usage_argv(FINISHED_IDS) == tuple(shlex.split(recording.command))
    assert SACCT_USAGE_FORMAT == "JobID,State,ElapsedRaw,CPUTimeRAW,AllocTRES,Start,End,Partition,Account"


@pytest.mark.parametrize("bad", [["12;rm"], ["-1"], [""], ["1 2"]])
def test_the_argv_refuses_what_is_not_an_id(bad: list[str]) -> None:
    with pytest.raises(ValueError, match="SLURM job id"):
        build_usage_argv(bad)


def test_the_argv_refuses_more_ids_than_one_command_takes() -> None:
    with pytest.raises(ValueError, match="chunk"):
        build_usage_argv([str(n) for n in range(1, MAX_JOB_IDS_PER_COMMAND + 2)])


def test_finished_jobs_as_accounting_has_them() -> None:
    records = parse_usage_output(load("usage_finished.txt").as_result(), FINISHED_IDS)
    assert sorted(records) == FINISHED_IDS
    two_cpus = records["5562"]
    assert (two_cpus.state, two_cpus.elapsed_s, two_cpus.cpu_time_s) == (PortalState.COMPLETED, 4, 8)
    assert two_cpus.tres == AllocatedTres(cpus=2, memory_mb=200, nodes=1, gpus=0)
    assert (two_cpus.partition, two_cpus.account) == ("normal", "lab")
    assert two_cpus.started_at == datetime(2026, 12, 6, 3, 2, 33)
    assert two_cpus.ended_at == datetime(2026, 12, 6, 3, 2, 37)
    assert records["5563"].tres == AllocatedTres(cpus=2, memory_mb=600, nodes=1, gpus=0)
    assert records["5563"].partition == "debug"
    assert records["5564"].state == PortalState.FAILED
    assert records["5564"].tres.memory_mb == 1024  # mem=1G


def test_a_job_cancelled_before_it_started_allocated_nothing() -> None:
    records = parse_usage_output(load("usage_finished.txt").as_result(), FINISHED_IDS)
    pending = records["5565"]
    assert pending.state == PortalState.CANCELLED
    assert pending.state_verbatim == "CANCELLED by 1015"
    assert (pending.elapsed_s, pending.cpu_time_s, pending.tres) == (0, 0, AllocatedTres())
    assert pending.started_at is None
    assert pending.is_terminal is True


def test_a_running_job_is_not_terminal_and_an_unknown_id_has_no_row() -> None:
    records = parse_usage_output(load("usage_running_and_unknown.txt").as_result(), ["5569", "999991"])
    assert list(records) == ["5569"]
    assert records["5569"].state == PortalState.RUNNING
    assert records["5569"].is_terminal is False
    assert records["5569"].ended_at is None  # "Unknown"


def test_rows_of_ids_not_asked_for_are_ignored() -> None:
    records = parse_usage_output(load("usage_finished.txt").as_result(), ["5563"])
    assert list(records) == ["5563"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("billing=2,cpu=2,mem=200M,node=1", AllocatedTres(cpus=2, memory_mb=200, nodes=1)),
        ("", AllocatedTres()),
        # GPU forms from SLURM's documentation of AllocTRES (the local cluster has no GPU to record):
        ("billing=8,cpu=8,gres/gpu=2,mem=32G,node=1", AllocatedTres(cpus=8, memory_mb=32768, nodes=1, gpus=2)),
        ("cpu=4,gres/gpu:a100=2,gres/gpu=2,mem=1.5G,node=1", AllocatedTres(cpus=4, memory_mb=1536, nodes=1, gpus=2)),
        ("cpu=4,gres/gpu:a100=1,gres/gpu:v100=2,node=2", AllocatedTres(cpus=4, nodes=2, gpus=3)),
        ("cpu=1,mem=512K,node=1", AllocatedTres(cpus=1, memory_mb=0, nodes=1)),
    ],
)
def test_alloc_tres(text: str, expected: AllocatedTres) -> None:
    assert parse_alloc_tres(text) == expected


def _mutated(old: str, new: str) -> str:
    stdout = load("usage_finished.txt").stdout
    assert old in stdout  # the mutation must change the recording
    return stdout.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("|lab\n", "\n", "fields"),  # a field missing
        ("|lab\n", "|lab|extra\n", "fields"),  # one too many
        ("5562|COMPLETED|4|", "5562|COMPLETED|4s|", "ElapsedRaw"),
        ("|4|8|", "|4|-8|", "CPUTimeRAW"),
        ("cpu=2,mem=200M", "cpu=two,mem=200M", "AllocTRES"),
        ("cpu=2,mem=200M", "cpu=2M,mem=200M", "unit"),
        ("mem=200M", "mem=200X", "AllocTRES"),
        ("|2026-12-06T03:02:33|", "|06/12/2026 03:02|", "Start"),
        ("|2026-12-06T03:02:37|normal", "|2026-13-06T03:02:37|normal", "End"),
        ("5562|COMPLETED|", "5562||", "state"),
    ],
)
def test_a_mutated_row_fails_the_answer(old: str, new: str, message: str) -> None:
    result = replace(load("usage_finished.txt").as_result(), stdout=_mutated(old, new))
    with pytest.raises(UnexpectedSlurmOutput, match=message):
        parse_usage_output(result, FINISHED_IDS)


@pytest.mark.parametrize(
    ("exit_code", "stderr"),
    [(1, "sacct: error: Problem talking to the database: Connection refused\n"), (0, "sacct: error: x\n"), (1, "")],
)
def test_a_failed_sacct_is_not_read(exit_code: int, stderr: str) -> None:
    result = replace(load("usage_finished.txt").as_result(), exit_code=exit_code, stderr=stderr)
    with pytest.raises(UsageQueryFailed) as failure:
        parse_usage_output(result, FINISHED_IDS)
    assert failure.value.code == "SLURM_USAGE_QUERY_FAILED"
