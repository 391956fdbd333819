"""The SLURM adapter's plain exceptions, each with a stable `code`, and the stderr excerpt they keep.

Owns `SlurmError` and its subclasses (sbatch's refusal, `SbatchRejected`, lives with sbatch). Must never
know Django or the portal's user-facing errors: services translate these (STYLE §4).
"""

from __future__ import annotations

STDERR_EXCERPT_MAX_CHARS = 2000


def stderr_excerpt(stderr: str) -> str:
    """Stderr trimmed for a log line: stripped and capped."""
    return stderr.strip()[:STDERR_EXCERPT_MAX_CHARS]


class SlurmError(Exception):
    """A SLURM command refused or printed what this adapter cannot read; `code` is stable."""

    code = "SLURM_ERROR"


class UnexpectedSlurmOutput(SlurmError):
    code = "SLURM_UNEXPECTED_OUTPUT"


class SlurmCommandFailed(SlurmError):
    """A SLURM command exited non-zero or complained; keeps a trimmed stderr for the logs."""

    def __init__(self, message: str, *, stderr_excerpt: str, exit_code: int) -> None:
        super().__init__(message)
        self.stderr_excerpt = stderr_excerpt
        self.exit_code = exit_code


class StatusQueryFailed(SlurmCommandFailed):
    code = "SLURM_STATUS_QUERY_FAILED"


class ScancelFailed(SlurmCommandFailed):
    code = "SLURM_SCANCEL_FAILED"


class RelinkFailed(SlurmCommandFailed):
    code = "SLURM_RELINK_FAILED"


class ChainStagingFailed(SlurmCommandFailed):
    """A command of a chain's prelude (folders, files) failed: nothing was queued. `command`: its name."""

    code = "SLURM_CHAIN_STAGING_FAILED"

    def __init__(self, message: str, *, stderr_excerpt: str, exit_code: int, command: str) -> None:
        super().__init__(message, stderr_excerpt=stderr_excerpt, exit_code=exit_code)
        self.command = command


class UsageQueryFailed(SlurmCommandFailed):
    code = "SLURM_USAGE_QUERY_FAILED"
