"""What one remote command gave back.

Owns the `CommandResult` value every caller of the ssh package reads. Must never know how the command
ran (one exec or a part of a sequence) or who ran it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int  # -1 when the command died by a signal and the server sent no exit status
    stdout: str
    stderr: str
    duration_s: float
