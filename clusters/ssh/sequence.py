"""Several argvs in one exec: the command line with its part markers, and its output cut back into parts.

Owns the only shell text the ssh package writes besides `shlex.join` output: the separators ` ; `,
` "$?"` and ` >&2` between the parts. They need a POSIX-style login shell (sh, bash, zsh, ksh), not
csh/tcsh. Must never know how the line reaches the cluster.
"""

from __future__ import annotations

import re
import secrets
import shlex

from clusters.ssh.errors import SequenceOutputMalformed
from clusters.ssh.results import CommandResult

_SEQUENCE_SEPARATOR = " ; "
_LAST_EXIT_STATUS = ' "$?"'
_TO_STDERR = " >&2"


def new_marker() -> str:
    """A fresh random part marker: output cannot forge it."""
    return f"NP_PART_{secrets.token_hex(16)}"


def sequence_line(parts: list[list[str]], marker: str) -> str:
    """The one line for all parts, joined by ` ; `.

    Each part is `shlex.join(argv) ; printf '\\n%s %s\\n' MARK "$?" ; printf '\\n%s\\n' MARK >&2`.
    """
    status_printf = shlex.join(["printf", "\\n%s %s\\n", marker]) + _LAST_EXIT_STATUS
    stderr_printf = shlex.join(["printf", "\\n%s\\n", marker]) + _TO_STDERR
    return _SEQUENCE_SEPARATOR.join(
        _SEQUENCE_SEPARATOR.join([shlex.join(argv), status_printf, stderr_printf]) for argv in parts
    )


def split_sequence_output(
    parts: list[list[str]], marker: str, out: str, err: str, duration_s: float
) -> list[CommandResult]:
    """Cut the output of `sequence_line` at its markers, one result per part. Raises SequenceOutputMalformed."""
    status_lines = re.compile(rf"\n{marker} (-?\d+)\n")
    out_chunks = status_lines.split(out)  # text, code, text, code, ..., trailing text
    err_chunks = err.split(f"\n{marker}\n")
    if len(out_chunks) != 2 * len(parts) + 1 or len(err_chunks) != len(parts) + 1 or out_chunks[-1] or err_chunks[-1]:
        raise SequenceOutputMalformed(
            f"expected {len(parts)} part markers in the output; is the login shell POSIX (sh, bash, zsh)?"
        )
    return [
        CommandResult(tuple(argv), int(out_chunks[2 * i + 1]), out_chunks[2 * i], err_chunks[i], duration_s)
        for i, argv in enumerate(parts)
    ]
