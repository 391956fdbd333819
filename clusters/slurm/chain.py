"""Queueing a pipeline's steps as one SLURM dependency chain, in one remote exec.

Each step's sbatch needs the id the previous one printed (`--dependency=afterok:<id>`), which only a
shell on the cluster knows in time. The script is built here from argvs each joined with
`shlex.join` (names and paths pass the allow-lists first); the only shell text not quoted is the
fixed `${prev:+...}` expansion of the previous id, which is ASCII digits. It runs `set -u`, stops at
the first sbatch that refuses (its stderr is the exec's) and prints one `queued <name> <id>` line per
step queued, so a caller knows what went in even when a later step did not. Before the first sbatch it
may run a prelude (the folders, the steps' files and their copy to scratch), so that a whole pipeline is
queued in this one exec: each prelude command is an argv joined with `shlex.join`, fed its data (if any)
as base64 in a quoted here-document (the alphabet has no character the shell reads); a prelude command
that fails stops the script before anything is queued, with STAGING_FAILED_EXIT and a
`np-staging-failed <command>` line on stderr. Also: moving the next step behind a continuation
(`scontrol update ... Dependency=afterok:<id>`). Must never know Django or SSH.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from clusters.slurm.identifiers import validate_job_id, validate_job_name
from clusters.slurm.sbatch import build_sbatch_argv

QUEUED_LINE_RE = re.compile(r"queued ([A-Za-z0-9][A-Za-z0-9._-]{0,127}) ([0-9]{1,12})", re.ASCII)


STAGING_FAILED_EXIT = 97
STAGING_FAILED_MARK = "np-staging-failed"
STAGING_FAILED_LINE_RE = re.compile(rf"^{STAGING_FAILED_MARK} (\S{{1,64}})$", re.MULTILINE)
DATA_DELIMITER = "NP_DATA"  # cannot occur in base64 text (no underscore in its alphabet)
BASE64_LINE_CHARS = 76


@dataclass(frozen=True)
class ChainStep:
    script_path: str
    job_name: str


@dataclass(frozen=True)
class PreludeCommand:
    """A command run before the chain (making folders, unpacking files), fed `data` on stdin if any."""

    argv: list[str]
    data: bytes = b""


def _prelude_lines(command: PreludeCommand) -> list[str]:
    if not command.argv:
        raise ValueError("a prelude command has an argv")
    name = shlex.quote(command.argv[0])
    failed = f"{{ printf '{STAGING_FAILED_MARK} %s\\n' {name} >&2; exit {STAGING_FAILED_EXIT}; }}"
    if not command.data:
        return [f"{shlex.join(command.argv)} </dev/null || {failed}"]
    encoded = base64.b64encode(command.data).decode("ascii")
    body = [encoded[i : i + BASE64_LINE_CHARS] for i in range(0, len(encoded), BASE64_LINE_CHARS)]
    return [f"base64 -d <<'{DATA_DELIMITER}' | {shlex.join(command.argv)} || {failed}", *body, DATA_DELIMITER]


def build_chain_script(
    steps: Sequence[ChainStep], *, after: str | None = None, prelude: Sequence[PreludeCommand] = ()
) -> tuple[list[str], bytes]:
    """(argv, stdin) of the exec that runs `prelude`, then queues `steps` in order, the first after job `after`.

    Raises ValueError on an empty chain, a refused name or path, or an id that is not one.
    """
    if not steps:
        raise ValueError("a chain has at least one step")
    lines = ["set -u -o pipefail", f"prev={validate_job_id(after) if after else ''}"]
    for command in prelude:
        lines += _prelude_lines(command)
    for step in steps:
        name = validate_job_name(step.job_name)
        argv = build_sbatch_argv(step.script_path, job_name=name)
        head, script = argv[:-2], argv[-2:]  # ["sbatch", "--parsable", "--job-name=..."], ["--", path]
        lines += [
            f'out=$({shlex.join(head)} ${{prev:+"--dependency=afterok:$prev"}} {shlex.join(script)}) || exit $?',
            'prev="${out%%;*}"',
            f"printf 'queued %s %s\\n' {shlex.quote(name)} \"$prev\"",
        ]
    return ["bash", "-s"], ("\n".join(lines) + "\n").encode()


def failed_prelude_command(stderr: str) -> str | None:
    """The name of the prelude command that stopped the chain (its `np-staging-failed <name>` line), or None."""
    match = STAGING_FAILED_LINE_RE.search(stderr)
    return match.group(1) if match is not None else None


def parse_chain_output(stdout: str) -> dict[str, str]:
    """The ids the chain queued, by job name, from its `queued <name> <id>` lines (others ignored)."""
    found = {}
    for line in stdout.splitlines():
        match = QUEUED_LINE_RE.fullmatch(line.strip())
        if match is not None:
            found[match.group(1)] = match.group(2)
    return found


def build_relink_argv(job_id: str, after: str) -> list[str]:
    """`scontrol update JobId=<id> Dependency=afterok:<after>`: a queued step now waits for `after`."""
    return ["scontrol", "update", f"JobId={validate_job_id(job_id)}", f"Dependency=afterok:{validate_job_id(after)}"]
