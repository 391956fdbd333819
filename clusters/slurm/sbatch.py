"""Submitting a batch script: the `sbatch --parsable` argv, its output, and what its refusals mean.

Owns the sbatch options the portal may pass (an allow-list), reading the job id sbatch prints, and the
rules turning sbatch's stderr into a coded message for the member. Must never know Django, SSH or the
batch script's content.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from clusters.slurm.errors import SlurmError, UnexpectedSlurmOutput, stderr_excerpt
from clusters.slurm.identifiers import validate_job_name

# sbatch options the portal may pass on the command line, as `--name` or `--name=value`.
SBATCH_OPTION_NAMES = frozenset(
    {
        "account",
        "chdir",
        "comment",
        "cpus-per-task",
        "error",
        "gres",
        "hold",
        "mem",
        "mem-per-cpu",
        "nodes",
        "ntasks",
        "ntasks-per-node",
        "output",
        "partition",
        "qos",
        "time",
    }
)
SBATCH_OPTION_PATTERN = re.compile(r"--([a-z][a-z-]*)(?:=([A-Za-z0-9_.,:/@%+=-]+))?", re.ASCII)
SBATCH_PARSABLE_PATTERN = re.compile(r"([0-9]{1,12})(?:;[A-Za-z0-9_.-]+)?", re.ASCII)


class SbatchErrorCode(StrEnum):
    INVALID_PARTITION = "INVALID_PARTITION"
    NODE_CONFIG_UNAVAILABLE = "NODE_CONFIG_UNAVAILABLE"
    TIME_LIMIT = "TIME_LIMIT"
    QOS = "QOS"
    ACCOUNT = "ACCOUNT"
    GRES = "GRES"
    INVALID_OPTION = "INVALID_OPTION"
    SCRIPT_NOT_FOUND = "SCRIPT_NOT_FOUND"
    CONTROLLER_UNAVAILABLE = "CONTROLLER_UNAVAILABLE"
    GENERIC = "GENERIC"


@dataclass(frozen=True)
class SbatchError:
    """Why sbatch refused: `message` is for the member, `stderr_excerpt` for the logs only."""

    code: SbatchErrorCode
    message: str
    stderr_excerpt: str
    exit_code: int

    @property
    def is_transient(self) -> bool:
        return self.code is SbatchErrorCode.CONTROLLER_UNAVAILABLE


class SbatchRejected(SlurmError):
    code = "SLURM_SBATCH_REJECTED"

    def __init__(self, error: SbatchError) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


# Lower-case fragments of sbatch's stderr, first match wins. Recorded texts are in
# tests/fixtures/slurm/22.05/sbatch_err_*.txt; the ones this cluster cannot provoke (it enforces no
# partition, QOS or account limit at submission) are SLURM's own error strings (slurm_errno.c).
SBATCH_ERROR_RULES: tuple[tuple[SbatchErrorCode, tuple[str, ...], str], ...] = (
    (
        SbatchErrorCode.INVALID_PARTITION,
        ("invalid partition",),
        "The cluster does not know the requested partition. Choose a partition from the cluster's list.",
    ),
    (
        SbatchErrorCode.TIME_LIMIT,
        ("requested time limit is invalid", "invalid --time specification"),
        "The requested run time is invalid or longer than the partition allows. "
        "Lower the walltime or choose a partition with a longer limit.",
    ),
    (
        SbatchErrorCode.NODE_CONFIG_UNAVAILABLE,
        (
            "requested node configuration is not available",
            "memory specification can not be satisfied",
            "more processors requested than permitted",
            "node count specification invalid",
        ),
        "No node of the cluster has that much memory or that many CPUs or nodes. "
        "Request fewer resources, or a partition with larger nodes.",
    ),
    (
        SbatchErrorCode.QOS,
        ("invalid qos", "job violates accounting/qos policy"),
        "The job exceeds what your quality of service (QOS) allows. Request fewer resources or another QOS.",
    ),
    (
        SbatchErrorCode.ACCOUNT,
        ("invalid account",),
        "Your cluster account may not submit to this partition. Check the account set in your cluster profile.",
    ),
    (
        SbatchErrorCode.GRES,
        ("invalid generic resource",),
        "The cluster does not offer the requested generic resource (e.g. GPUs). Remove it or choose another partition.",
    ),
    (
        SbatchErrorCode.INVALID_OPTION,
        ("unrecognized option", "invalid option"),
        "The cluster's scheduler does not accept one of the job's options. Ask a lab admin to check the recipe.",
    ),
    (
        SbatchErrorCode.SCRIPT_NOT_FOUND,
        ("unable to open file",),
        "The batch script was not found on the cluster. Upload the job's files again, then resubmit.",
    ),
    (
        SbatchErrorCode.CONTROLLER_UNAVAILABLE,
        ("unable to contact slurm controller", "socket timed out", "temporarily unable to accept job"),
        "The cluster's scheduler did not answer. The portal will try again; nothing needs changing.",
    ),
)
SBATCH_GENERIC_MESSAGE = "The cluster refused the job. A lab admin can find the scheduler's answer in the logs."


def build_sbatch_argv(script_path: str, *, job_name: str | None = None, extra_args: Sequence[str] = ()) -> list[str]:
    """`sbatch --parsable [--job-name=NAME] [OPTIONS] -- SCRIPT`; raises ValueError on a refused value."""
    if not script_path or "\0" in script_path or "\n" in script_path:
        raise ValueError("script path must be non-empty, without NUL or newline")
    argv = ["sbatch", "--parsable"]
    if job_name is not None:
        argv.append("--job-name=" + validate_job_name(job_name))
    for arg in extra_args:
        match = SBATCH_OPTION_PATTERN.fullmatch(arg)
        if match is None or match.group(1) not in SBATCH_OPTION_NAMES:
            raise ValueError(f"sbatch option not allowed: {arg!r}")
        argv.append(arg)
    argv += ["--", script_path]
    return argv


def parse_sbatch_output(stdout: str) -> str:
    """The job id from `sbatch --parsable` ("12345" or "12345;cluster"); raises UnexpectedSlurmOutput."""
    match = SBATCH_PARSABLE_PATTERN.fullmatch(stdout.strip())
    if match is None:
        raise UnexpectedSlurmOutput(f"sbatch --parsable printed no job id ({len(stdout)} chars)")
    return match.group(1)


def classify_sbatch_error(stderr: str, exit_code: int) -> SbatchError:
    """What a refusing sbatch meant, with a message for the member."""
    lowered = stderr.lower()
    for code, fragments, message in SBATCH_ERROR_RULES:
        if any(fragment in lowered for fragment in fragments):
            return SbatchError(code=code, message=message, stderr_excerpt=stderr_excerpt(stderr), exit_code=exit_code)
    return SbatchError(
        code=SbatchErrorCode.GENERIC,
        message=SBATCH_GENERIC_MESSAGE,
        stderr_excerpt=stderr_excerpt(stderr),
        exit_code=exit_code,
    )
