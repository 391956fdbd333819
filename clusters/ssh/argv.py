"""Argv lists on their way to the cluster: checking them, showing them in logs, the line an exec gets.

Owns the rules an argv must pass (a non-empty list of str without NUL), the log-safe copy of an argv
(secret-looking values hidden, trimmed) and the one prefix the transport adds to a command line.
Must never know how a line reaches the cluster or whose command it is. It never joins an argv itself:
only the pool does, with `shlex.join`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_LOG_ARG_CHARS = 80
_LOG_MAX_ARGS = 12
_LOG_STDERR_CHARS = 500
# "--password=x", "TOKEN=x", "api_key=x": an option or assignment whose name looks secret.
_SECRET_ARG = re.compile(r"(?i)^-*[\w.-]*(pass|secret|token|key)[\w.-]*=")


def validate_argv(argv: object) -> list[str]:
    """Return argv if it is a non-empty list of str without NUL. Raises TypeError, ValueError."""
    if not isinstance(argv, list):
        raise TypeError(f"argv must be a list of str, not {type(argv).__name__}")
    if not argv:
        raise ValueError("argv must not be empty")
    for arg in argv:
        if not isinstance(arg, str):
            raise TypeError(f"argv items must be str, not {type(arg).__name__}")
        if "\x00" in arg:
            raise ValueError("argv items must not contain NUL")
    return argv


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A log-safe copy of argv: values of secret-looking options hidden, items and count trimmed."""
    shown: list[str] = []
    for arg in argv[:_LOG_MAX_ARGS]:
        match = _SECRET_ARG.match(arg)
        if match:
            arg = arg[: match.end()] + "***"
        shown.append(arg if len(arg) <= _LOG_ARG_CHARS else arg[:_LOG_ARG_CHARS] + "…")
    if len(argv) > _LOG_MAX_ARGS:
        shown.append(f"…(+{len(argv) - _LOG_MAX_ARGS} args)")
    return shown


def trim_for_log(text: str, limit: int = _LOG_STDERR_CHARS) -> str:
    """Text (a command's stderr) cut to `limit` characters for a log line."""
    return text if len(text) <= limit else text[:limit] + "…"


def command_line(line: str, *, has_stdin: bool) -> str:
    """The line to exec. A command given no stdin reads /dev/null on the cluster instead of waiting for our EOF.

    paramiko sends a channel's EOF outside the channel's lock, so for a command that ends at once the EOF can
    follow the CLOSE our reader thread sends back; OpenSSH then drops the whole connection ("ieof packet
    referred to nonexistent channel", paramiko #1705), failing every other command on it. Sending nothing
    after the exec removes the race; the remote shell (POSIX, as `run_sequence` needs too) gives the stdin.
    """
    return line if has_stdin else f"exec </dev/null; {line}"
