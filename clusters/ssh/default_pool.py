"""The process's default connection pool, for callers that hold no pool of their own.

Owns `install_default_pool` and the module-level `run`/`run_sequence` over it. Must never create a pool
by itself: the process installs one at start-up.
"""

from __future__ import annotations

from clusters.ssh.channel import DEFAULT_MAX_OUTPUT_BYTES
from clusters.ssh.pool import ConnectionPool
from clusters.ssh.results import CommandResult
from clusters.ssh.spec import ConnectionSpec

_default_pool: ConnectionPool | None = None


def install_default_pool(pool: ConnectionPool) -> None:
    """Set the pool that module-level `run`/`run_sequence` use (once per process, at start-up)."""
    global _default_pool
    _default_pool = pool


def _require_default_pool() -> ConnectionPool:
    if _default_pool is None:
        raise RuntimeError("no ConnectionPool installed: call install_default_pool() at process start")
    return _default_pool


def run(
    spec: ConnectionSpec,
    argv: list[str],
    *,
    identity: str,
    stdin: bytes | None = None,
    timeout_s: float,
    check: bool = False,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
) -> CommandResult:
    """`ConnectionPool.run` on the installed default pool. Raises RuntimeError if none is installed."""
    return _require_default_pool().run(
        spec, argv, identity=identity, stdin=stdin, timeout_s=timeout_s, check=check, max_output_bytes=max_output_bytes
    )


def run_sequence(
    spec: ConnectionSpec,
    argvs: list[list[str]],
    *,
    identity: str,
    timeout_s: float,
    check: bool = False,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
) -> list[CommandResult]:
    """`ConnectionPool.run_sequence` on the installed default pool. Raises RuntimeError if none is installed."""
    return _require_default_pool().run_sequence(
        spec, argvs, identity=identity, timeout_s=timeout_s, check=check, max_output_bytes=max_output_bytes
    )
