"""clusters.slurm without a cluster: builders and parsers fed by outputs recorded on SLURM 22.05.

Each fixture in tests/fixtures/slurm/22.05 is one real recording: a `# ...` header (the exact command,
the user, its exit code), then `# --- stdout ---` and `# --- stderr ---` sections holding the streams.
The two parts of a status or lookup exec are a pair of files, `<name>_squeue.txt` and `<name>_sacct.txt`
(see the README there).
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusters.slurm import (
    MAX_JOB_IDS_PER_COMMAND,
    SLURM_TO_PORTAL_STATE,
    ChainStagingFailed,
    ChainStep,
    JobStatus,
    PortalState,
    PreludeCommand,
    SbatchErrorCode,
    SbatchRejected,
    ScancelFailed,
    SlurmClient,
    SlurmState,
    StatusQueryFailed,
    StatusSource,
    UnexpectedSlurmOutput,
    build_find_by_name_argvs,
    build_sbatch_argv,
    build_scancel_argv,
    build_status_argvs,
    chunk_job_ids,
    classify_sbatch_error,
    is_terminal,
    job_ids_named,
    parse_find_by_name_output,
    parse_sacct_status_line,
    parse_sbatch_output,
    parse_squeue_status_line,
    parse_state,
    parse_status_output,
    validate_job_id,
)
from clusters.ssh import CommandResult

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm" / "22.05"
STDOUT_HEADER = "# --- stdout ---\n"
STDERR_HEADER = "# --- stderr ---\n"


@dataclass(frozen=True)
class Recording:
    command: str
    exit_code: int
    stdout: str
    stderr: str

    def as_result(self) -> CommandResult:
        return CommandResult(
            argv=tuple(shlex.split(self.command)),
            exit_code=self.exit_code,
            stdout=self.stdout,
            stderr=self.stderr,
            duration_s=0.0,
        )


def load(name: str) -> Recording:
    """A recording with its comment header stripped."""
    header, streams = (FIXTURES / name).read_text().split(STDOUT_HEADER, 1)
    stdout, stderr = streams.split(STDERR_HEADER, 1)
    fields = dict(line[2:].split(": ", 1) for line in header.splitlines() if line.startswith("# "))
    return Recording(command=fields["command"], exit_code=int(fields["exit_code"]), stdout=stdout, stderr=stderr)


def recorded_names(prefix: str) -> list[str]:
    return sorted(path.name for path in FIXTURES.glob(f"{prefix}*.txt"))


def load_parts(name: str) -> tuple[CommandResult, CommandResult]:
    """The squeue and sacct results of one recorded two-part exec."""
    return load(f"{name}_squeue.txt").as_result(), load(f"{name}_sacct.txt").as_result()


def rows(name: str) -> list[str]:
    return load(name).stdout.splitlines()


def row_of(lines: list[str], job_id: str) -> str:
    [line] = [line for line in lines if line.split("|", 1)[0] == job_id]
    return line


# ---------------------------------------------------------------- the state table

EXPECTED_PORTAL_STATE = {
    "PENDING": PortalState.PENDING,
    "CONFIGURING": PortalState.PENDING,
    "POWER_UP_NODE": PortalState.PENDING,
    "REQUEUED": PortalState.PENDING,
    "REQUEUE_HOLD": PortalState.PENDING,
    "REQUEUE_FED": PortalState.PENDING,
    "RESV_DEL_HOLD": PortalState.PENDING,
    "RECONFIG_FAIL": PortalState.PENDING,
    "RUNNING": PortalState.RUNNING,
    "RESIZING": PortalState.RUNNING,
    "SIGNALING": PortalState.RUNNING,
    "SUSPENDED": PortalState.RUNNING,
    "STOPPED": PortalState.RUNNING,
    "COMPLETING": PortalState.COMPLETING,
    "STAGE_OUT": PortalState.COMPLETING,
    "COMPLETED": PortalState.COMPLETED,
    "FAILED": PortalState.FAILED,
    "SPECIAL_EXIT": PortalState.FAILED,
    "CANCELLED": PortalState.CANCELLED,
    "REVOKED": PortalState.CANCELLED,
    "TIMEOUT": PortalState.TIMEOUT,
    "DEADLINE": PortalState.TIMEOUT,
    "OUT_OF_MEMORY": PortalState.OUT_OF_MEMORY,
    "NODE_FAIL": PortalState.NODE_FAIL,
    "BOOT_FAIL": PortalState.NODE_FAIL,
    "PREEMPTED": PortalState.PREEMPTED,
}


def test_the_table_maps_every_slurm_state() -> None:
    assert set(SLURM_TO_PORTAL_STATE) == set(SlurmState)
    assert set(EXPECTED_PORTAL_STATE) | {"UNKNOWN"} == {state.value for state in SlurmState}


@pytest.mark.parametrize(("text", "expected"), sorted(EXPECTED_PORTAL_STATE.items()))
def test_each_slurm_state_maps_to_its_portal_state(text: str, expected: PortalState) -> None:
    parsed = parse_state(text)

    assert parsed.slurm_state is SlurmState(text)
    assert parsed.state is expected
    assert parsed.verbatim == text


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (state, state not in (PortalState.PENDING, PortalState.RUNNING, PortalState.COMPLETING, PortalState.UNKNOWN))
        for state in PortalState
    ],
)
def test_is_terminal(state: PortalState, expected: bool) -> None:
    assert is_terminal(state) is expected


def test_cancelled_by_uid_maps_to_cancelled_and_keeps_the_verbatim_text() -> None:
    parsed = parse_state("CANCELLED by 1001")

    assert parsed.state is PortalState.CANCELLED
    assert parsed.verbatim == "CANCELLED by 1001"


def test_recorded_cancelled_by_uid_keeps_the_verbatim_text() -> None:
    status = parse_sacct_status_line(row_of(rows("sacct_finished.txt"), "47"))

    assert status is not None
    assert status.state is PortalState.CANCELLED
    assert status.state_verbatim == "CANCELLED by 1005"


def test_unknown_state_is_unknown_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="clusters.slurm"):
        parsed = parse_state("BRAND_NEW_STATE by 7")

    assert parsed.slurm_state is SlurmState.UNKNOWN
    assert parsed.state is PortalState.UNKNOWN
    assert parsed.verbatim == "BRAND_NEW_STATE by 7"
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    assert "BRAND_NEW_STATE by 7" in caplog.records[0].getMessage()


def test_known_state_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="clusters.slurm"):
        parse_state("RUNNING")

    assert caplog.records == []


def test_truncated_state_with_plus_is_read() -> None:
    assert parse_state("CANCELLED+").state is PortalState.CANCELLED


@given(st.text())
def test_parse_state_never_raises(text: str) -> None:
    assert parse_state(text).verbatim == text.strip()


# ---------------------------------------------------------------- sbatch


def test_sbatch_argv_shape() -> None:
    argv = build_sbatch_argv(
        "/scratch/alice/run/job.sbatch", job_name="np-0123abcd4567-water", extra_args=["--chdir=/scratch/alice/run"]
    )

    assert argv == [
        "sbatch",
        "--parsable",
        "--job-name=np-0123abcd4567-water",
        "--chdir=/scratch/alice/run",
        "--",
        "/scratch/alice/run/job.sbatch",
    ]


def test_sbatch_argv_without_name_or_options() -> None:
    assert build_sbatch_argv("job.sbatch") == ["sbatch", "--parsable", "--", "job.sbatch"]


@pytest.mark.parametrize(
    "extra_arg", ["--wrap=rm -rf ~", "--wrap", "-p", "--export=ALL", "--partition=a b", "--time=1;id", "--"]
)
def test_sbatch_argv_refuses_options_outside_the_allow_list(extra_arg: str) -> None:
    with pytest.raises(ValueError, match="sbatch option not allowed"):
        build_sbatch_argv("job.sbatch", extra_args=[extra_arg])


@pytest.mark.parametrize("job_name", ["", "-x", "a b", "a;b", "a|b", "é", "x" * 129, "a\nb"])
def test_sbatch_argv_refuses_job_names_outside_the_allow_list(job_name: str) -> None:
    with pytest.raises(ValueError, match="not an allowed SLURM job name"):
        build_sbatch_argv("job.sbatch", job_name=job_name)


@pytest.mark.parametrize("script_path", ["", "a\nb", "a\0b"])
def test_sbatch_argv_refuses_unusable_script_paths(script_path: str) -> None:
    with pytest.raises(ValueError, match="script path"):
        build_sbatch_argv(script_path)


def test_recorded_sbatch_command_is_what_the_builder_makes() -> None:
    recording = load("sbatch_ok_completed.txt")
    argv = build_sbatch_argv(
        "/scratch/np_rec_slurm/rec/ok.sh", job_name="np-rec-ok", extra_args=["--chdir=/scratch/np_rec_slurm/rec"]
    )

    # The recording put --chdir before --job-name: compare as sets of options around the fixed ends.
    recorded = shlex.split(recording.command)
    assert recorded[:2] == argv[:2]
    assert recorded[-2:] == argv[-2:]
    assert sorted(recorded[2:-2]) == sorted(argv[2:-2])


@pytest.mark.parametrize("name", recorded_names("sbatch_ok_") + recorded_names("sbatch_accepted_"))
def test_recorded_accepted_submissions_print_a_job_id(name: str) -> None:
    recording = load(name)

    assert recording.exit_code == 0
    assert parse_sbatch_output(recording.stdout) == recording.stdout.strip()


def test_sbatch_output_with_a_cluster_name() -> None:
    # `sbatch --parsable` on a multi-cluster setup prints "id;cluster" (sbatch man page).
    assert parse_sbatch_output("12345;alps\n") == "12345"


@pytest.mark.parametrize("stdout", ["", "Submitted batch job 12", "12;", "12;a b", "x12", "1\n2"])
def test_sbatch_output_without_an_id_is_unexpected(stdout: str) -> None:
    with pytest.raises(UnexpectedSlurmOutput):
        parse_sbatch_output(stdout)


RECORDED_SBATCH_ERRORS = {
    "sbatch_err_invalid_partition.txt": SbatchErrorCode.INVALID_PARTITION,
    "sbatch_err_mem.txt": SbatchErrorCode.NODE_CONFIG_UNAVAILABLE,
    "sbatch_err_gres.txt": SbatchErrorCode.GRES,
    "sbatch_err_time_format.txt": SbatchErrorCode.TIME_LIMIT,
    "sbatch_err_invalid_option.txt": SbatchErrorCode.INVALID_OPTION,
    "sbatch_err_missing_script.txt": SbatchErrorCode.SCRIPT_NOT_FOUND,
}


def test_every_recorded_sbatch_error_is_covered() -> None:
    assert set(RECORDED_SBATCH_ERRORS) == set(recorded_names("sbatch_err_"))


@pytest.mark.parametrize(("name", "code"), sorted(RECORDED_SBATCH_ERRORS.items()))
def test_recorded_sbatch_errors_are_classified(name: str, code: SbatchErrorCode) -> None:
    recording = load(name)
    error = classify_sbatch_error(recording.stderr, recording.exit_code)

    assert recording.exit_code != 0
    assert error.code is code
    assert error.exit_code == recording.exit_code
    assert error.stderr_excerpt == recording.stderr.strip()
    assert all(line not in error.message for line in recording.stderr.splitlines() if line)
    assert "sbatch" not in error.message
    assert error.is_transient is False


# SLURM's own texts (slurm_errno.c, 22.05) for refusals this cluster cannot provoke: it enforces no
# partition limit, QOS or account at submission (sbatch_accepted_*.txt: those jobs were accepted).
UNRECORDABLE_SBATCH_ERRORS = {
    "sbatch: error: Batch job submission failed: Requested time limit is invalid (missing or exceeds some limit)": (
        SbatchErrorCode.TIME_LIMIT
    ),
    "sbatch: error: Batch job submission failed: Invalid qos specification": SbatchErrorCode.QOS,
    "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
    "(job submit limit, user's size and/or time limits)": SbatchErrorCode.QOS,
    "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified": (
        SbatchErrorCode.ACCOUNT
    ),
    "sbatch: error: Batch job submission failed: More processors requested than permitted": (
        SbatchErrorCode.NODE_CONFIG_UNAVAILABLE
    ),
    "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)": (
        SbatchErrorCode.CONTROLLER_UNAVAILABLE
    ),
    "sbatch: error: Batch job submission failed: Access/permission denied": SbatchErrorCode.GENERIC,
}


@pytest.mark.parametrize(("stderr", "code"), sorted(UNRECORDABLE_SBATCH_ERRORS.items()))
def test_slurm_error_texts_are_classified(stderr: str, code: SbatchErrorCode) -> None:
    error = classify_sbatch_error(stderr + "\n", 1)

    assert error.code is code
    assert error.stderr_excerpt == stderr
    assert error.is_transient is (code is SbatchErrorCode.CONTROLLER_UNAVAILABLE)


def test_every_sbatch_error_code_is_exercised() -> None:
    exercised = set(RECORDED_SBATCH_ERRORS.values()) | set(UNRECORDABLE_SBATCH_ERRORS.values())
    assert exercised == set(SbatchErrorCode)


def test_sbatch_error_excerpt_is_capped() -> None:
    error = classify_sbatch_error("x" * 10_000, 1)

    assert error.code is SbatchErrorCode.GENERIC
    assert len(error.stderr_excerpt) == 2000


@given(st.text(), st.integers(min_value=-1, max_value=255))
def test_classify_never_raises_and_never_echoes_stderr(stderr: str, exit_code: int) -> None:
    error = classify_sbatch_error("zq" + stderr, exit_code)

    assert error.code in set(SbatchErrorCode)
    assert ("zq" + stderr).strip()[:2000] == error.stderr_excerpt
    assert "zq" not in error.message


# ---------------------------------------------------------------- job ids and chunking


@pytest.mark.parametrize(
    "job_id", ["1;rm -rf /", "", " 12", "12 ", "-1", "12a", "1,2", "12_3", "12+0", "١٢", "1" * 13, "$(id)"]
)
def test_non_digit_job_ids_are_rejected(job_id: str) -> None:
    with pytest.raises(ValueError, match="not a SLURM job id"):
        validate_job_id(job_id)
    with pytest.raises(ValueError, match="not a SLURM job id"):
        build_status_argvs(["42", job_id])
    with pytest.raises(ValueError, match="not a SLURM job id"):
        build_scancel_argv(job_id)


@given(st.text(max_size=20))
def test_validate_job_id_accepts_exactly_ascii_digits(text: str) -> None:
    is_digits = 1 <= len(text) <= 12 and all("0" <= char <= "9" for char in text)
    if is_digits:
        assert validate_job_id(text) == text
    else:
        with pytest.raises(ValueError, match="not a SLURM job id"):
            validate_job_id(text)


def test_no_job_ids_is_an_error() -> None:
    with pytest.raises(ValueError, match="no job ids"):
        build_status_argvs([])


def test_chunking_splits_deduplicates_and_keeps_order() -> None:
    ids = [str(n) for n in range(1000, 1450)] + ["1000", "1001"]

    chunks = chunk_job_ids(ids, size=200)

    assert [len(chunk) for chunk in chunks] == [200, 200, 50]
    assert [job_id for chunk in chunks for job_id in chunk] == [str(n) for n in range(1000, 1450)]


def test_too_many_ids_for_one_command_is_an_error() -> None:
    ids = [str(n) for n in range(MAX_JOB_IDS_PER_COMMAND + 1)]

    with pytest.raises(ValueError, match="chunk them"):
        build_status_argvs(ids)


# ---------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("name", "job_ids"),
    [
        ("status_live_and_purged", ["42", "44", "53", "9"]),
        ("status_lone_purged_id", ["9"]),
        ("status_never_existed_id", ["999999"]),
        ("status_array_het_pending", ["58", "59"]),
        ("status_timeout_array_het_finished", ["42", "58", "59"]),
    ],
)
def test_recorded_status_commands_are_what_the_builder_makes(name: str, job_ids: list[str]) -> None:
    squeue, sacct = load_parts(name)

    assert [squeue.argv, sacct.argv] == list(build_status_argvs(job_ids))


def test_status_argvs_hold_no_shell_syntax() -> None:
    argvs = build_status_argvs(["42", "44"])

    assert [argv[0] for argv in argvs] == ["squeue", "sacct"]
    assert all(";" not in arg and "$" not in arg and "&" not in arg for argv in argvs for arg in argv)


def test_status_of_live_finished_and_foreign_jobs() -> None:
    statuses = parse_status_output(*load_parts("status_live_and_purged"), ["42", "44", "53", "9"])

    assert sorted(statuses) == ["42", "44", "53", "9"]
    running = statuses["42"]
    assert (running.state, running.source, running.node_list) == (PortalState.RUNNING, StatusSource.SQUEUE, "vm")
    assert running.started_at == datetime(2026, 11, 24, 18, 15, 30)
    assert running.ended_at is None  # squeue's %e for a live job is only start + time limit
    assert running.elapsed_s == 31
    failed = statuses["44"]
    assert (failed.state, failed.source, failed.exit_code, failed.exit_signal) == (
        PortalState.FAILED,
        StatusSource.SACCT,
        3,
        0,
    )
    assert failed.reason == "NonZeroExitCode"  # sacct -X says None; squeue still knew why
    held = statuses["53"]
    assert (held.state, held.reason, held.started_at, held.will_never_start) == (
        PortalState.PENDING,
        "JobHeldUser",
        None,
        False,
    )
    purged = statuses["9"]
    assert (purged.state, purged.source, purged.exit_code) == (PortalState.FAILED, StatusSource.SACCT, 127)


def test_lone_purged_id_is_read_from_sacct_despite_squeues_error() -> None:
    squeue, sacct = load_parts("status_lone_purged_id")
    statuses = parse_status_output(squeue, sacct, ["9"])

    assert (squeue.exit_code, squeue.stderr.strip()) == (1, "slurm_load_jobs error: Invalid job id specified")
    assert statuses["9"].state is PortalState.FAILED
    assert statuses["9"].source is StatusSource.SACCT


def test_never_existing_id_is_absent_not_an_error() -> None:
    assert parse_status_output(*load_parts("status_never_existed_id"), ["999999"]) == {}


def test_recorded_lone_purged_squeue_exits_1_with_no_rows() -> None:
    for name in ("squeue_lone_purged_id.txt", "squeue_lone_never_existed_id.txt"):
        recording = load(name)
        assert (recording.exit_code, recording.stdout) == (1, "")
        assert recording.stderr == "slurm_load_jobs error: Invalid job id specified\n"


def test_timeout_is_read_and_array_and_het_rows_do_not_crash() -> None:
    statuses = parse_status_output(*load_parts("status_timeout_array_het_finished"), ["42", "58", "59"])

    assert sorted(statuses) == ["42"]
    timed_out = statuses["42"]
    assert (timed_out.state, timed_out.slurm_state, timed_out.reason) == (
        PortalState.TIMEOUT,
        SlurmState.TIMEOUT,
        "TimeLimit",
    )
    assert (timed_out.elapsed_s, timed_out.ended_at) == (69, datetime(2026, 11, 24, 18, 16, 39))
    assert timed_out.is_terminal is True


def test_pending_array_and_het_rows_do_not_crash() -> None:
    assert parse_status_output(*load_parts("status_array_het_pending"), ["58", "59"]) == {}


def test_pending_reasons_from_a_busy_queue() -> None:
    ids = ["42", "43", "44", "45", "47", "48", "49", "50", "51", "52", "53", "54", "55", "56", "57"]

    # Two recordings one second apart, as the two parts of one status exec.
    squeue, sacct = load("squeue_live_mixed.txt").as_result(), load("sacct_live_mixed.txt").as_result()

    statuses = parse_status_output(squeue, sacct, ids)

    reasons = {job_id: (status.state, status.reason, status.will_never_start) for job_id, status in statuses.items()}
    assert reasons["52"] == (PortalState.PENDING, "PartitionTimeLimit", True)  # -p debug --time=2:00:00
    assert reasons["49"] == (PortalState.PENDING, "PartitionConfig", True)  # --nodes=5 on a 1-node cluster
    assert reasons["47"] == (PortalState.PENDING, "Resources", False)  # squeue, although sacct already said RUNNING
    assert reasons["54"] == (PortalState.PENDING, "Priority", False)
    assert reasons["53"] == (PortalState.PENDING, "JobHeldUser", False)
    assert reasons["43"] == (PortalState.COMPLETED, None, False)
    assert statuses["43"].source is StatusSource.SACCT
    assert statuses["43"].elapsed_s == 21


def test_completing_and_cancelled_rows() -> None:
    completing = parse_squeue_status_line(
        row_of(load("status_sequence_scancel_then_squeue_completing.txt").stdout.splitlines(), "47")
    )
    cancelled = parse_squeue_status_line(row_of(rows("squeue_cancelled.txt"), "47"))

    assert completing is not None
    assert (completing.state, completing.is_terminal, completing.ended_at) == (PortalState.COMPLETING, False, None)
    assert cancelled is not None
    assert (cancelled.state, cancelled.state_verbatim) == (PortalState.CANCELLED, "CANCELLED")
    assert cancelled.ended_at == datetime(2026, 11, 24, 18, 16, 19)


def test_sacct_rows_of_finished_jobs() -> None:
    lines = rows("sacct_finished.txt")
    by_id = {line.split("|", 1)[0]: parse_sacct_status_line(line) for line in lines}

    cancelled_held = by_id["53"]
    assert cancelled_held is not None
    assert (cancelled_held.state_verbatim, cancelled_held.started_at, cancelled_held.node_list) == (
        "CANCELLED by 1005",
        None,
        None,
    )
    rejected = by_id["46"]  # the refused sbatch --mem=999999 still has a FAILED record
    assert rejected is not None
    assert (rejected.state, rejected.exit_code, rejected.node_list) == (PortalState.FAILED, 1, None)
    completed = by_id["45"]
    assert completed is not None
    assert (completed.state, completed.exit_code, completed.elapsed_s) == (PortalState.COMPLETED, 0, 0)


def test_squeue_elapsed_forms() -> None:
    def elapsed(text: str) -> int | None:
        status = parse_squeue_status_line(f"1|RUNNING|None|N/A|N/A|{text}|vm")
        assert status is not None
        return status.elapsed_s

    assert [elapsed(text) for text in ("0:00", "1:09", "1:02:03", "2-01:02:03", "INVALID")] == [
        0,
        69,
        3723,
        176523,
        None,
    ]


def part(*, exit_code: int = 0, stdout: str = "", stderr: str = "") -> CommandResult:
    return CommandResult(argv=(), exit_code=exit_code, stdout=stdout, stderr=stderr, duration_s=0.0)


CONTROLLER_DOWN = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"


@pytest.mark.parametrize(
    ("squeue", "sacct"),
    [(part(exit_code=1, stderr=CONTROLLER_DOWN), part()), (part(), part(exit_code=1, stderr=CONTROLLER_DOWN))],
    ids=["squeue", "sacct"],
)
def test_unexpected_stderr_fails_the_status_query(squeue: CommandResult, sacct: CommandResult) -> None:
    with pytest.raises(StatusQueryFailed) as excinfo:
        parse_status_output(squeue, sacct, ["42"])
    assert "Unable to contact slurm controller" in excinfo.value.stderr_excerpt
    assert excinfo.value.exit_code == 1


def test_sacct_failure_fails_the_status_query() -> None:
    with pytest.raises(StatusQueryFailed, match="sacct"):
        parse_status_output(part(), part(exit_code=1), ["42"])


def test_squeue_failure_without_its_no_such_id_message_fails_the_status_query() -> None:
    with pytest.raises(StatusQueryFailed, match="squeue"):
        parse_status_output(part(exit_code=1), load("sacct_live_mixed.txt").as_result(), ["42"])


def test_no_such_id_from_sacct_is_not_squeues_excuse() -> None:
    no_such_id = load("squeue_lone_purged_id.txt").stderr

    with pytest.raises(StatusQueryFailed, match="sacct"):
        parse_status_output(part(), part(stderr=no_such_id), ["9"])


def test_misshapen_row_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="clusters.slurm"):
        status = parse_squeue_status_line("42|RUNNING|None")

    assert status is None
    assert "slurm_unreadable_row" in caplog.records[0].getMessage()


FIELD = st.text(alphabet=st.characters(blacklist_characters="|\n\r"), max_size=12)


@given(st.lists(FIELD, min_size=1, max_size=10).map("|".join))
def test_row_parsers_never_raise(line: str) -> None:
    for parse in (parse_squeue_status_line, parse_sacct_status_line):
        status = parse(line)
        assert status is None or isinstance(status, JobStatus)


@given(st.text(), st.lists(st.from_regex(r"[0-9]{1,6}", fullmatch=True), min_size=1, max_size=5))
def test_status_output_parser_never_raises_but_status_query_failed(text: str, job_ids: list[str]) -> None:
    try:
        statuses = parse_status_output(part(stdout=text), part(stdout=text[::-1]), job_ids)
    except StatusQueryFailed:
        return
    assert set(statuses) <= set(job_ids)


# ---------------------------------------------------------------- scancel and lookup by name


def test_scancel_argv() -> None:
    assert build_scancel_argv("53") == ["scancel", "--", "53"]
    assert build_scancel_argv("53", "54", "60") == ["scancel", "--", "53", "54", "60"]  # one call for many
    with pytest.raises(ValueError, match="at least one"):
        build_scancel_argv()
    with pytest.raises(ValueError, match="not a SLURM job id"):
        build_scancel_argv("53", "-u")
    assert load("scancel_pending_held.txt").command == shlex.join(build_scancel_argv("53"))


@pytest.mark.parametrize("name", ["find_by_name", "find_by_name_absent"])
def test_recorded_find_by_name_commands_are_what_the_builder_makes(name: str) -> None:
    squeue, sacct = load_parts(name)
    tag = squeue.argv[4].removeprefix("--name=")

    assert [squeue.argv, sacct.argv] == list(build_find_by_name_argvs(tag))


def test_find_by_name_finds_the_tagged_job() -> None:
    assert parse_find_by_name_output(*load_parts("find_by_name"), "np-rec-run1") == ["54"]
    assert parse_find_by_name_output(*load_parts("find_by_name_absent"), "np-00000000-nothing") == []


@pytest.mark.parametrize("failing", ["squeue", "sacct"])
def test_find_by_name_fails_when_either_part_fails(failing: str) -> None:
    squeue, sacct = load_parts("find_by_name")
    broken = part(exit_code=1, stderr=CONTROLLER_DOWN)

    with pytest.raises(StatusQueryFailed, match=failing):
        parse_find_by_name_output(
            broken if failing == "squeue" else squeue, broken if failing == "sacct" else sacct, "np-rec-run1"
        )


def test_find_by_name_counts_array_and_het_rows_as_their_base_id() -> None:
    stdout = load("squeue_me_all_names.txt").stdout

    assert job_ids_named(stdout, "np-rec-het") == ["59"]
    assert job_ids_named(stdout, "np-rec-array") == ["58"]
    assert job_ids_named(stdout, "np-rec-timeout") == ["42"]


def test_sacct_alone_misses_a_job_that_just_ended() -> None:
    # Why find_by_name asks squeue too: sacct first lists a short job as "allocation" (22.05).
    assert job_ids_named(load("sacct_allocation_placeholder_name.txt").stdout, "np-rec-quick") == []


def test_find_by_name_refuses_names_outside_the_allow_list() -> None:
    with pytest.raises(ValueError, match="not an allowed SLURM job name"):
        build_find_by_name_argvs("x,y")


@given(st.text(), st.from_regex(r"[a-z]{1,8}", fullmatch=True))
def test_find_by_name_parser_never_raises(stdout: str, name: str) -> None:
    assert all(job_id.isdigit() for job_id in job_ids_named(stdout, name))


# ---------------------------------------------------------------- the client, on recorded outputs


class RecordedTransport:
    """FakeTransport: answers each argv with the next recording, and keeps what it was asked."""

    def __init__(self, *names: str) -> None:
        self._results = [load(name).as_result() for name in names]
        self.commands: list[str | list[str]] = []  # a sequence is the list of its parts

    def run(self, argv: Sequence[str], timeout_s: float) -> CommandResult:
        assert timeout_s > 0
        self.commands.append(shlex.join(argv))
        return self._results.pop(0)

    def run_sequence(self, argvs: Sequence[Sequence[str]], timeout_s: float) -> list[CommandResult]:
        assert timeout_s > 0
        self.commands.append([shlex.join(argv) for argv in argvs])
        return [self._results.pop(0) for _ in argvs]


def client_for(transport: RecordedTransport) -> SlurmClient:
    return SlurmClient(run=transport.run, run_sequence=transport.run_sequence)


def test_client_submit_returns_the_job_id() -> None:
    transport = RecordedTransport("sbatch_ok_completed.txt")

    assert client_for(transport).submit("/scratch/np_rec_slurm/rec/ok.sh", "np-rec-ok") == "45"
    assert transport.commands == ["sbatch --parsable --job-name=np-rec-ok -- /scratch/np_rec_slurm/rec/ok.sh"]


def test_client_submit_raises_the_classification() -> None:
    transport = RecordedTransport("sbatch_err_invalid_partition.txt")

    with pytest.raises(SbatchRejected) as excinfo:
        client_for(transport).submit("job.sbatch", "np-x", extra_args=["--partition=nonexist"])
    assert excinfo.value.error.code is SbatchErrorCode.INVALID_PARTITION
    assert "nonexist" not in excinfo.value.error.message


def test_client_statuses_makes_one_exec_per_chunk() -> None:
    transport = RecordedTransport(*["status_never_existed_id_squeue.txt", "status_never_existed_id_sacct.txt"] * 3)
    ids = [str(n) for n in range(1, 2 * MAX_JOB_IDS_PER_COMMAND + 2)]

    assert client_for(transport).statuses(ids) == {}
    assert len(transport.commands) == 3
    assert [[part.split()[0] for part in command] for command in transport.commands] == [["squeue", "sacct"]] * 3


def test_client_statuses_of_nothing_runs_nothing() -> None:
    transport = RecordedTransport()

    assert client_for(transport).statuses([]) == {}
    assert transport.commands == []


def test_client_cancel_of_a_finished_or_unknown_job_is_no_error() -> None:
    transport = RecordedTransport("scancel_finished.txt", "scancel_never_existed.txt")
    client = client_for(transport)

    client.cancel("44")
    client.cancel("999999")

    assert transport.commands == ["scancel -- 44", "scancel -- 999999"]


def test_client_cancel_of_another_users_job_fails() -> None:
    transport = RecordedTransport("scancel_other_users_job.txt")

    with pytest.raises(ScancelFailed) as excinfo:
        client_for(transport).cancel("40")
    assert (excinfo.value.exit_code, excinfo.value.stderr_excerpt) == (
        210,
        "scancel: error: Kill job error on job id 40: Access/permission denied",
    )


def test_client_find_by_name() -> None:
    transport = RecordedTransport("find_by_name_squeue.txt", "find_by_name_sacct.txt")

    assert client_for(transport).find_by_name("np-rec-run1") == ["54"]
    assert transport.commands == [[shlex.join(argv) for argv in build_find_by_name_argvs("np-rec-run1")]]


def test_client_chain_tells_a_failed_prelude_from_a_refused_sbatch() -> None:
    replies = [
        CommandResult(("bash", "-s"), 97, "", "tar: /x: Cannot open: Permission denied\nnp-staging-failed tar\n", 0.01),
        CommandResult(("bash", "-s"), 1, "queued np-a 7\n", "sbatch: error: Invalid partition name specified\n", 0.01),
    ]
    scripts: list[bytes] = []

    def run_script(argv: Sequence[str], stdin: bytes, timeout_s: float) -> CommandResult:
        scripts.append(stdin)
        return replies.pop(0)

    client = SlurmClient(run=lambda argv, t: replies.pop(0), run_sequence=lambda a, t: [], run_script=run_script)
    steps = [ChainStep("/p/a.sbatch", "np-a"), ChainStep("/p/b.sbatch", "np-b")]
    prelude = [PreludeCommand(["mkdir", "-p", "--", "/p"])]

    with pytest.raises(ChainStagingFailed) as staging:
        client.submit_chain(steps, prelude=prelude)
    refused = client.submit_chain(steps, prelude=prelude)

    assert staging.value.code == "SLURM_CHAIN_STAGING_FAILED"
    assert staging.value.command == "tar"
    assert "Permission denied" in staging.value.stderr_excerpt
    assert refused.job_ids == ["7", None]
    assert refused.error is not None
    assert refused.error.code == SbatchErrorCode.INVALID_PARTITION
    assert all(b"mkdir -p -- /p </dev/null ||" in script for script in scripts)
