"""`SlurmClient`: sbatch, status, scancel and lookup by name for one member on one cluster.

Owns the order of calls and the chunking of many ids; argvs and parsers are the sibling modules'.
Must never know Django, models, the portal's users, SSH or how an argv reaches the cluster: the client
is handed `run` and `run_sequence` callables (the transport's) and gets `CommandResult`s back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from clusters.slurm.chain import (
    STAGING_FAILED_EXIT,
    ChainStep,
    PreludeCommand,
    build_chain_script,
    build_relink_argv,
    failed_prelude_command,
    parse_chain_output,
)
from clusters.slurm.errors import ChainStagingFailed, RelinkFailed, ScancelFailed, stderr_excerpt
from clusters.slurm.identifiers import chunk_job_ids
from clusters.slurm.lookup import build_find_by_names_argvs, parse_find_by_names_output
from clusters.slurm.sbatch import (
    SbatchError,
    SbatchRejected,
    build_sbatch_argv,
    classify_sbatch_error,
    parse_sbatch_output,
)
from clusters.slurm.scancel import build_scancel_argv
from clusters.slurm.states import JobStatus
from clusters.slurm.status import build_status_argvs, parse_status_output
from clusters.ssh import CommandResult

# `run(argv, timeout_s)`: one argv, one remote exec (the transport's `run`).
RunCommand = Callable[[Sequence[str], float], CommandResult]
# `run_sequence(argvs, timeout_s)`: several argvs in ONE remote exec, one result per argv; see `SlurmClient`.
RunSequence = Callable[[Sequence[Sequence[str]], float], list[CommandResult]]
# `run_script(argv, stdin, timeout_s)`: one argv fed `stdin` (the dependency chain's script), one exec.
RunScript = Callable[[Sequence[str], bytes, float], CommandResult]
CHAIN_TIMEOUT_FACTOR = 4  # a chain of many sbatch calls gets more time than one


@dataclass(frozen=True)
class ChainResult:
    """The ids queued, one per step in order (None for a step not queued), and why the chain stopped."""

    job_ids: list[str | None]
    error: SbatchError | None


class SlurmClient:
    """sbatch, status, scancel and lookup by name for one member on one cluster.

    Contract of `run_sequence(argvs, timeout_s) -> list[CommandResult]`: the argvs run in order within
    ONE remote exec, every argv whatever the previous one's exit status, and each gets its own result
    (exit code, stdout, stderr), in the order given. Each argv is joined with `shlex.join` by the
    transport; no value is ever pasted into shell text and no `sh -c` is involved. Two commands in one
    exec keep the status sync at one round trip per (member, cluster) and chunk of ids: squeue has the
    live reason, sacct the exit code and jobs slurmctld has purged.
    """

    def __init__(
        self,
        *,
        run: RunCommand,
        run_sequence: RunSequence,
        run_script: RunScript | None = None,
        command_timeout_s: float = 30.0,
    ) -> None:
        self._run = run
        self._run_sequence = run_sequence
        self._run_script = run_script
        self._command_timeout_s = command_timeout_s

    def submit(self, script_path: str, job_name: str, *, extra_args: Sequence[str] = ()) -> str:
        """Submit a batch script; returns the job id. Raises SbatchRejected, UnexpectedSlurmOutput."""
        argv = build_sbatch_argv(script_path, job_name=job_name, extra_args=extra_args)
        result = self._run(argv, self._command_timeout_s)
        if result.exit_code != 0:
            raise SbatchRejected(classify_sbatch_error(result.stderr, result.exit_code))
        return parse_sbatch_output(result.stdout)

    def statuses(self, job_ids: Iterable[str]) -> dict[str, JobStatus]:
        """Statuses of the ids SLURM knows, one exec per chunk of ids. Raises StatusQueryFailed."""
        ids = tuple(job_ids)
        if not ids:
            return {}
        statuses: dict[str, JobStatus] = {}
        for chunk in chunk_job_ids(ids):
            squeue, sacct = self._run_sequence(build_status_argvs(chunk), self._command_timeout_s)
            statuses.update(parse_status_output(squeue, sacct, chunk))
        return statuses

    def cancel(self, *job_ids: str) -> None:
        """Cancel jobs in one scancel; an id SLURM no longer knows is no error (22.05 exits 0). Raises ScancelFailed."""
        result = self._run(build_scancel_argv(*job_ids), self._command_timeout_s)
        if result.exit_code != 0:
            raise ScancelFailed(
                "scancel refused", stderr_excerpt=stderr_excerpt(result.stderr), exit_code=result.exit_code
            )

    def find_by_name(self, name: str) -> list[str]:
        """Ids of this member's jobs named `name` (the submit tag). Raises StatusQueryFailed."""
        return self.find_by_names([name])[name]

    def find_by_names(self, names: list[str]) -> dict[str, list[str]]:
        """Ids of this member's jobs by name, for many names in one exec. Raises StatusQueryFailed."""
        squeue, sacct = self._run_sequence(build_find_by_names_argvs(names), self._command_timeout_s)
        return parse_find_by_names_output(squeue, sacct, names)

    def submit_chain(
        self, steps: Sequence[ChainStep], *, after: str | None = None, prelude: Sequence[PreludeCommand] = ()
    ) -> ChainResult:
        """Run `prelude`, then queue the steps as one afterok chain (the first after job `after`), in one exec.

        A refusal part-way leaves the steps before it queued: the result says which and why. Raises
        ChainStagingFailed when a prelude command failed (nothing queued).
        """
        if self._run_script is None:
            raise TypeError("this client cannot run scripts")
        argv, script = build_chain_script(steps, after=after, prelude=prelude)
        result = self._run_script(argv, script, self._command_timeout_s * CHAIN_TIMEOUT_FACTOR)
        failed = failed_prelude_command(result.stderr) if result.exit_code == STAGING_FAILED_EXIT else None
        if failed is not None:
            raise ChainStagingFailed(
                f"{failed} failed before the chain",
                stderr_excerpt=stderr_excerpt(result.stderr),
                exit_code=STAGING_FAILED_EXIT,
                command=failed,
            )
        queued = parse_chain_output(result.stdout)
        ids = [queued.get(step.job_name) for step in steps]
        error = None
        if result.exit_code != 0 or None in ids:
            error = classify_sbatch_error(result.stderr, result.exit_code)
        return ChainResult(ids, error)

    def relink(self, job_id: str, *, after: str) -> None:
        """Make queued job `job_id` wait for `after` (afterok) instead of what it waited for. Raises RelinkFailed."""
        result = self._run(build_relink_argv(job_id, after), self._command_timeout_s)
        if result.exit_code != 0:
            raise RelinkFailed(
                "scontrol update refused", stderr_excerpt=stderr_excerpt(result.stderr), exit_code=result.exit_code
            )
