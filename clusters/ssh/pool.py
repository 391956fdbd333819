"""The per-process pool of SSH connections, and running argv lists on the cluster through it.

Owns one pooled connection per (identity, host, port, username), dropped when the spec's pinned host keys
are no longer those it was verified under: leasing and releasing it, channel slots
(kept below sshd's MaxSessions), connecting with retries under the session budget and the breaker,
reconnecting once when a pooled connection died, closing idle ones, forgetting them in a forked child,
and `run`/`run_sequence`, the only places that join an argv (`shlex.join`). File transfer borrows a
pooled connection through `leased_transport`.

Must never know Django, models, settings or which member a connection belongs to beyond the opaque
`identity` string. Secrets in a spec never appear in a pool key, a log line or an exception message.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import shlex
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import paramiko

from clusters.ssh.argv import redact_argv, trim_for_log, validate_argv
from clusters.ssh.breaker import CircuitBreaker
from clusters.ssh.budget import RetryPolicy, SessionBudget
from clusters.ssh.channel import DEFAULT_MAX_OUTPUT_BYTES, exchange, terminate_remote
from clusters.ssh.connect import open_client
from clusters.ssh.errors import (
    AuthFailed,
    RemoteCommandFailed,
    RemoteOutputTooLarge,
    TransportError,
    TransportTimeout,
    Unreachable,
)
from clusters.ssh.host_keys import pinned_host_keys
from clusters.ssh.keys import load_private_key
from clusters.ssh.results import CommandResult
from clusters.ssh.sequence import new_marker, sequence_line, split_sequence_output
from clusters.ssh.spec import ConnectionSpec

logger = logging.getLogger(__name__)

# Constant event names: log pipelines match on these, never on free text.
EVENT_CONNECT = "ssh.connect"
EVENT_CONNECT_FAILED = "ssh.connect_failed"
EVENT_CONNECT_RETRY = "ssh.connect_retry"
EVENT_RECONNECT = "ssh.reconnect"
EVENT_IDLE_CLOSE = "ssh.idle_close"
EVENT_COMMAND = "ssh.command"
EVENT_COMMAND_TIMEOUT = "ssh.command_timeout"
EVENT_COMMAND_OUTPUT_TOO_LARGE = "ssh.command_output_too_large"


@dataclass
class _Pooled:
    key: tuple[str, str, int, str]
    client: paramiko.SSHClient
    transport: paramiko.Transport
    channel_slots: threading.BoundedSemaphore
    last_used: float
    pinned_host_keys: tuple[str, ...]  # the pins it was verified under
    in_use: int = 0
    is_retired: bool = False  # out of the pool (its pins changed); closed when its last command ends

    def close(self) -> None:
        self.client.close()


class _ConnectionDead(Exception):
    """The pooled transport is gone: reconnect once."""


class ConnectionPool:
    """One pooled SSH connection per (identity, host, port, username) in this process; thread-safe."""

    def __init__(
        self,
        *,
        budget_for: Callable[[str], SessionBudget | None] | None = None,
        breaker: CircuitBreaker | None = None,
        retry: RetryPolicy | None = None,
        keepalive_s: int = 30,
        idle_close_s: float = 300.0,
        max_channels_per_connection: int = 4,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._budget_for = budget_for or (lambda _cluster_key: None)
        self._breaker = breaker
        self._retry = retry or RetryPolicy()
        self._keepalive_s = keepalive_s
        self._idle_close_s = idle_close_s
        # sshd's MaxSessions (default 10) caps channels per connection; staying below it keeps
        # concurrent threads from being refused a channel on a healthy connection.
        self._max_channels = max_channels_per_connection
        self._monotonic = monotonic
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, int, str], _Pooled] = {}
        self._key_locks: dict[tuple[str, str, int, str], threading.Lock] = {}
        self._reaper: threading.Thread | None = None
        self._reaper_stop = threading.Event()
        self.connects_opened = 0
        # A forked child (Celery prefork) must not share the parent's sockets: forget them, unclosed.
        os.register_at_fork(after_in_child=functools.partial(_forget_pool_after_fork, weakref.ref(self)))

    # -- public API

    def run(
        self,
        spec: ConnectionSpec,
        argv: list[str],
        *,
        identity: str,
        stdin: bytes | None = None,
        timeout_s: float,
        check: bool = False,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> CommandResult:
        """Run one argv on the cluster. Raises TransportError subclasses; RemoteCommandFailed only if check;
        RemoteOutputTooLarge past `max_output_bytes` of stdout and stderr together (the command is stopped)."""
        argv = validate_argv(argv)
        if stdin is not None and not isinstance(stdin, bytes):
            raise TypeError("stdin must be bytes or None")
        exit_code, out, err, duration_s = self._execute(
            spec, identity, shlex.join(argv), argv, stdin, timeout_s, max_output_bytes
        )
        result = CommandResult(tuple(argv), exit_code, out, err, duration_s)
        if check and exit_code != 0:
            raise RemoteCommandFailed(f"remote command {argv[0]!r} exited with status {exit_code}", result=result)
        return result

    def run_sequence(
        self,
        spec: ConnectionSpec,
        argvs: list[list[str]],
        *,
        identity: str,
        timeout_s: float,
        check: bool = False,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> list[CommandResult]:
        """Run several argv lists in ONE exec, in order, each whatever the previous one's status.

        The line and its markers are `clusters.ssh.sequence`'s (a POSIX-style login shell is needed). Each
        part gets its own exit code, stdout and stderr; duration_s is the whole exec's. The timeout and the
        output cap cover the whole exec; there is no stdin. Raises TransportError subclasses,
        SequenceOutputMalformed when markers are missing, RemoteCommandFailed (first failing part) only if
        check, RemoteOutputTooLarge past `max_output_bytes`.
        """
        if not isinstance(argvs, list) or not argvs:
            raise TypeError("argvs must be a non-empty list of argv lists")
        parts = [validate_argv(argv) for argv in argvs]
        marker = new_marker()
        line = sequence_line(parts, marker)
        log_argv = [arg for argv in parts for arg in [*argv, ";"]][:-1]
        _code, out, err, duration_s = self._execute(spec, identity, line, log_argv, None, timeout_s, max_output_bytes)
        results = split_sequence_output(parts, marker, out, err, duration_s)
        if check:
            for result in results:
                if result.exit_code != 0:
                    raise RemoteCommandFailed(
                        f"remote command {result.argv[0]!r} exited with status {result.exit_code}", result=result
                    )
        return results

    @contextlib.contextmanager
    def leased_transport(self, spec: ConnectionSpec, *, identity: str) -> Iterator[paramiko.Transport]:
        """The pooled paramiko Transport for (identity, cluster), held for the block, e.g. for SFTP.

        Holds one of the connection's channel slots: open at most one channel in the block and close it
        there. Raises the connect errors of `run`, TransportTimeout when no slot frees up in time.
        """
        entry = self._lease(spec, identity)
        try:
            if not entry.channel_slots.acquire(timeout=spec.connect_timeout_s):
                raise TransportTimeout("no free channel on the pooled connection", during_connect=False)
            try:
                yield entry.transport
            finally:
                entry.channel_slots.release()
        finally:
            self._release(entry)

    def close_idle(self) -> int:
        """Close connections unused for idle_close_s; returns how many were closed."""
        now = self._monotonic()
        with self._lock:
            idle = [
                entry
                for entry in self._entries.values()
                if entry.in_use == 0 and now - entry.last_used >= self._idle_close_s
            ]
            for entry in idle:
                del self._entries[entry.key]
        for entry in idle:
            logger.info(EVENT_IDLE_CLOSE, extra=_entry_log(entry))
            entry.close()
        return len(idle)

    def close_all(self) -> None:
        """Close every pooled connection (commands still running on them fail)."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            self._reaper_stop.set()
            self._reaper = None
        for entry in entries:
            entry.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    # -- leasing

    def _key_lock(self, key: tuple[str, str, int, str]) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _lease(self, spec: ConnectionSpec, identity: str) -> _Pooled:
        if not isinstance(identity, str) or not identity:
            raise ValueError("identity must be a non-empty str")
        key = (identity, spec.host, spec.port, spec.username)
        with self._key_lock(key):
            with self._lock:
                entry = self._entries.get(key)
                reason = ""
                if entry is not None:
                    if entry.pinned_host_keys != spec.pinned_host_keys:
                        reason = "host_keys_changed"  # verified under pins an admin has since replaced
                    elif not entry.transport.is_active():
                        reason = "transport_inactive"
                    else:
                        entry.in_use += 1
                        return entry
                    del self._entries[key]
                    entry.is_retired = entry.in_use > 0
            if entry is not None:
                logger.info(EVENT_RECONNECT, extra={**_entry_log(entry), "reason": reason})
                if not entry.is_retired:
                    entry.close()
            entry = self._connect_with_retry(spec, key)
            with self._lock:
                entry.in_use += 1
                self._entries[key] = entry
                self._start_reaper()
            return entry

    def _release(self, entry: _Pooled) -> None:
        with self._lock:
            entry.in_use -= 1
            entry.last_used = self._monotonic()
            close_now = entry.is_retired and entry.in_use == 0
        if close_now:
            entry.close()

    def _discard(self, entry: _Pooled) -> None:
        with self._lock:
            if self._entries.get(entry.key) is entry:
                del self._entries[entry.key]
        entry.close()

    def _start_reaper(self) -> None:
        if self._reaper is not None:
            return
        self._reaper_stop = threading.Event()
        self._reaper = threading.Thread(
            target=self._reap, args=(self._reaper_stop,), name="ssh-pool-reaper", daemon=True
        )
        self._reaper.start()

    def _reap(self, stop: threading.Event) -> None:
        interval_s = max(1.0, min(self._idle_close_s / 2, 30.0))
        while not stop.wait(interval_s):
            self.close_idle()
            with self._lock:
                if not self._entries and self._reaper_stop is stop:
                    self._reaper = None
                    return

    def _forget_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._entries = {}
        self._key_locks = {}
        self._reaper = None
        self._reaper_stop = threading.Event()

    # -- connecting

    def _connect_with_retry(self, spec: ConnectionSpec, key: tuple[str, str, int, str]) -> _Pooled:
        pkey = load_private_key(spec.private_key, spec.passphrase) if spec.private_key else None
        if pkey is None and spec.password is None:
            raise AuthFailed("the connection spec holds neither a private key nor a password")
        host_keys = pinned_host_keys(spec)
        cluster_key = spec.resolved_cluster_key
        attempt = 1
        while True:
            try:
                return self._connect_once(spec, key, pkey, host_keys, cluster_key)
            except (Unreachable, TransportTimeout) as exc:
                if attempt >= self._retry.max_attempts:
                    raise
                delay_s = self._retry.delay_s(attempt, self._rng)
                logger.info(
                    EVENT_CONNECT_RETRY,
                    extra={"cluster": cluster_key, "attempt": attempt, "error_code": exc.code, "delay_s": delay_s},
                )
                self._sleep(delay_s)
                attempt += 1

    def _connect_once(
        self,
        spec: ConnectionSpec,
        key: tuple[str, str, int, str],
        pkey: paramiko.PKey | None,
        host_keys: list[paramiko.PKey],
        cluster_key: str,
    ) -> _Pooled:
        if self._breaker is not None:
            self._breaker.before_connect(cluster_key)
        budget = self._budget_for(cluster_key)
        if budget is not None:
            budget.take()
        log = {"cluster": cluster_key, "host": spec.host, "port": spec.port, "remote_user": spec.username}
        started = time.monotonic()
        try:
            client = open_client(spec, pkey, host_keys)
        except (Unreachable, TransportTimeout) as exc:
            logger.warning(EVENT_CONNECT_FAILED, extra={**log, "error_code": exc.code, "error": str(exc)})
            if self._breaker is not None:
                self._breaker.record_failure(cluster_key)
            raise
        except TransportError as exc:
            # The server answered (auth or host key refused): it is up, as far as the breaker cares.
            logger.warning(EVENT_CONNECT_FAILED, extra={**log, "error_code": exc.code, "error": str(exc)})
            if self._breaker is not None:
                self._breaker.record_success(cluster_key)
            raise
        if self._breaker is not None:
            self._breaker.record_success(cluster_key)
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(self._keepalive_s)
        with self._lock:
            self.connects_opened += 1
        logger.info(EVENT_CONNECT, extra={**log, "duration_ms": round((time.monotonic() - started) * 1000, 1)})
        return _Pooled(
            key=key,
            client=client,
            transport=transport,
            channel_slots=threading.BoundedSemaphore(spec.max_channels or self._max_channels),
            last_used=self._monotonic(),
            pinned_host_keys=spec.pinned_host_keys,
        )

    # -- executing

    def _execute(
        self,
        spec: ConnectionSpec,
        identity: str,
        line: str,
        log_argv: Sequence[str],
        stdin: bytes | None,
        timeout_s: float,
        max_output_bytes: int,
    ) -> tuple[int, str, str, float]:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if max_output_bytes <= 0:
            raise ValueError("max_output_bytes must be positive")
        started = time.monotonic()
        deadline = started + timeout_s
        entry, channel = self._lease_channel(spec, identity, deadline)
        log = {**_entry_log(entry), "argv": redact_argv(log_argv)}
        try:
            exit_code, out, err = exchange(channel, line, stdin, deadline, max_output_bytes)
        except TransportTimeout:
            logger.warning(EVENT_COMMAND_TIMEOUT, extra={**log, "timeout_s": timeout_s})
            terminate_remote(channel)
            raise
        except RemoteOutputTooLarge:
            # Closing the channel (below) stops the flow; SIGTERM also ends a command that would go on writing.
            logger.warning(EVENT_COMMAND_OUTPUT_TOO_LARGE, extra={**log, "max_output_bytes": max_output_bytes})
            terminate_remote(channel)
            raise
        except Unreachable:
            if not entry.transport.is_active():
                self._discard(entry)
            raise
        finally:
            channel.close()
            entry.channel_slots.release()
            self._release(entry)
        duration_s = time.monotonic() - started
        stdout, stderr = out.decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace")
        logger.info(
            EVENT_COMMAND,
            extra={
                **log,
                "exit_code": exit_code,
                "duration_ms": round(duration_s * 1000, 1),
                "stderr": trim_for_log(stderr) if exit_code != 0 else "",
            },
        )
        return exit_code, stdout, stderr, duration_s

    def _lease_channel(self, spec: ConnectionSpec, identity: str, deadline: float) -> tuple[_Pooled, paramiko.Channel]:
        """A leased connection and a channel on it; a dead connection is replaced once, never the command."""
        has_reconnected = False
        while True:
            entry = self._lease(spec, identity)
            try:
                return entry, self._open_channel(entry, deadline)
            except _ConnectionDead as exc:
                self._release(entry)
                self._discard(entry)
                if has_reconnected:
                    raise Unreachable(f"{spec.host}:{spec.port} dropped the connection twice in a row") from exc
                has_reconnected = True
                logger.info(EVENT_RECONNECT, extra={**_entry_log(entry), "reason": "channel_open_failed"})
            except BaseException:
                self._release(entry)
                raise

    def _open_channel(self, entry: _Pooled, deadline: float) -> paramiko.Channel:
        """A session channel on the entry, holding one channel slot. Raises _ConnectionDead, TransportTimeout."""
        if not entry.channel_slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise TransportTimeout("no free channel on the pooled connection before the timeout", during_connect=False)
        try:
            return entry.transport.open_session(timeout=max(0.1, deadline - time.monotonic()))
        except paramiko.ChannelException as exc:
            if entry.transport.is_active():
                entry.channel_slots.release()
                raise Unreachable("the server refused a new session channel (MaxSessions?)") from exc
            entry.channel_slots.release()
            raise _ConnectionDead from exc
        except (paramiko.SSHException, EOFError, OSError) as exc:
            entry.channel_slots.release()
            raise _ConnectionDead from exc


def _forget_pool_after_fork(pool_ref: weakref.ref[ConnectionPool]) -> None:
    pool = pool_ref()
    if pool is not None:
        pool._forget_after_fork()


def _entry_log(entry: _Pooled) -> dict[str, object]:
    identity, host, port, username = entry.key
    return {"identity": identity, "host": host, "port": port, "remote_user": username}
