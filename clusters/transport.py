"""SSH to a cluster's login node: pooled paramiko connections, `run(argv)`, host keys, session budget, breaker.

Owns: how a command line is built (only `shlex.join` of argv lists, plus the fixed separators of
`run_sequence`), pinned host-key checking, key loading, the classification of every failure into a
`TransportError` with a stable `code`, the per-process connection pool, and the cluster-wide new-session
budget and circuit breaker kept in Redis so that every worker process agrees. File transfer is not
here: it borrows a pooled connection through `ConnectionPool.leased_transport`.

Must never know: Django, models, settings or which member a connection belongs to beyond the opaque
`identity` string. Configuration comes in as arguments. Secrets in a spec (private key, passphrase,
password) never appear in a repr, a log line, a pool key or an exception message.

Error codes (stable; services translate them, see STYLE §4):
    AUTH_FAILED               the server refused our credentials (also: password auth disabled)
    KEY_PASSPHRASE_WRONG      the private key is encrypted and the passphrase is wrong or missing
    KEY_INVALID               the private key text cannot be read as an ed25519/ecdsa/rsa key
    HOST_KEY_MISMATCH         the server's key is not among the pinned ones (or the pins are unusable)
    UNREACHABLE               refused, DNS, no route, handshake dropped, connection lost mid-command (transient)
    TIMEOUT                   connect/banner/handshake or command timeout (transient; `during_connect` tells which)
    REMOTE_COMMAND_FAILED     non-zero exit with `check=True`; the result is on the exception
    REMOTE_PATH_FORBIDDEN     a path outside the member's roots (raised by clusters.paths)
    REMOTE_FILE_MISSING       a download's source does not exist or cannot be read (raised by clusters.transfer)
    SEQUENCE_OUTPUT_MALFORMED `run_sequence` could not find its markers (e.g. a non-POSIX login shell)
    SESSION_BUDGET_EXHAUSTED  the cluster's new-session budget stayed empty for the allowed wait (transient)
    CLUSTER_DEGRADED          the cluster's circuit breaker is open: fail fast (transient)
Redis errors from the budget or breaker propagate unchanged (`redis.RedisError`).
"""

from __future__ import annotations

import base64
import contextlib
import enum
import functools
import io
import logging
import os
import random
import re
import secrets
import select
import shlex
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import paramiko
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from paramiko.common import cMSG_CHANNEL_REQUEST

if TYPE_CHECKING:
    import redis

logger = logging.getLogger(__name__)

# Constant event names: log pipelines match on these, never on free text.
EVENT_CONNECT = "ssh.connect"
EVENT_CONNECT_FAILED = "ssh.connect_failed"
EVENT_CONNECT_RETRY = "ssh.connect_retry"
EVENT_RECONNECT = "ssh.reconnect"
EVENT_IDLE_CLOSE = "ssh.idle_close"
EVENT_COMMAND = "ssh.command"
EVENT_COMMAND_TIMEOUT = "ssh.command_timeout"
EVENT_SESSION_BUDGET_WAIT = "ssh.session_budget_wait"
EVENT_BREAKER_OPENED = "ssh.breaker_opened"

DEFAULT_KEY_PREFIX = "namd-portal:ssh"
_READ_CHUNK = 65536
_LOG_ARG_CHARS = 80
_LOG_MAX_ARGS = 12
_LOG_STDERR_CHARS = 500
# "--password=x", "TOKEN=x", "api_key=x": an option or assignment whose name looks secret.
_SECRET_ARG = re.compile(r"(?i)^-*[\w.-]*(pass|secret|token|key)[\w.-]*=")


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything needed to open one member's SSH session to one cluster."""

    host: str
    port: int
    username: str
    pinned_host_keys: tuple[str, ...]  # OpenSSH public key lines, e.g. "ssh-ed25519 AAAA..."
    private_key: str | None = field(default=None, repr=False)  # OpenSSH/PEM private key text
    passphrase: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    connect_timeout_s: float = 10.0
    # Names the cluster for the shared session budget and breaker; empty means "host:port".
    cluster_key: str = ""
    # Concurrent sessions (channels) this member may hold on the connection; None: the pool's default.
    max_channels: int | None = None

    @property
    def resolved_cluster_key(self) -> str:
        """The key the budget and breaker use for this spec's cluster."""
        return self.cluster_key or f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int  # -1 when the command died by a signal and the server sent no exit status
    stdout: str
    stderr: str
    duration_s: float


class TransportError(Exception):
    """A failure talking to the cluster; `code` is stable, the message holds no secret."""

    code = "TRANSPORT_ERROR"
    is_transient = False


class AuthFailed(TransportError):
    code = "AUTH_FAILED"


class KeyPassphraseWrong(AuthFailed):
    code = "KEY_PASSPHRASE_WRONG"


class KeyInvalid(AuthFailed):
    code = "KEY_INVALID"


class HostKeyMismatch(TransportError):
    code = "HOST_KEY_MISMATCH"


class Unreachable(TransportError):
    code = "UNREACHABLE"
    is_transient = True


class TransportTimeout(TransportError):
    code = "TIMEOUT"
    is_transient = True

    def __init__(self, message: str, *, during_connect: bool) -> None:
        super().__init__(message)
        self.during_connect = during_connect


class RemoteCommandFailed(TransportError):
    code = "REMOTE_COMMAND_FAILED"

    def __init__(self, message: str, *, result: CommandResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class RemotePathForbidden(TransportError):
    code = "REMOTE_PATH_FORBIDDEN"


class SequenceOutputMalformed(TransportError):
    code = "SEQUENCE_OUTPUT_MALFORMED"


class SessionBudgetExhausted(TransportError):
    code = "SESSION_BUDGET_EXHAUSTED"
    is_transient = True


class ClusterDegraded(TransportError):
    code = "CLUSTER_DEGRADED"
    is_transient = True


# ---------------------------------------------------------------------------------------------- argv


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


def _trim(text: str, limit: int = _LOG_STDERR_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# ----------------------------------------------------------------------------------------- host keys


def _parse_public_key_line(line: str) -> paramiko.PKey:
    """Parse "type base64 [comment]". Raises ValueError."""
    parts = line.strip().split()
    if len(parts) < 2:
        raise ValueError("a public key line is 'type base64 [comment]'")
    try:
        blob = base64.b64decode(parts[1], validate=True)
        return paramiko.PKey.from_type_string(parts[0], blob)
    except (ValueError, paramiko.SSHException) as exc:
        raise ValueError(f"unreadable {parts[0]!r} public key") from exc


def fingerprint_sha256(key_line: str) -> str:
    """The OpenSSH-style "SHA256:..." fingerprint of a public key line. Raises ValueError."""
    return _parse_public_key_line(key_line).fingerprint


def fetch_host_key(host: str, port: int, timeout_s: float) -> str:
    """Read the server's host key without authenticating, as an OpenSSH public key line.

    For the admin's first-contact flow: show `fingerprint_sha256` of the result and pin it only once the
    admin confirmed it out of band. Raises Unreachable, TransportTimeout.
    """
    sock = _open_socket(host, port, timeout_s)
    transport = paramiko.Transport(sock)
    started = time.monotonic()
    try:
        transport.banner_timeout = timeout_s
        transport.start_client(timeout=timeout_s)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise _handshake_error(host, port, timeout_s, time.monotonic() - started) from exc
    finally:
        transport.close()
        sock.close()
    return f"{key.get_name()} {key.get_base64()}"


class _PinnedKeysOnly(paramiko.RejectPolicy):
    """RejectPolicy that says which key was offered; paramiko's own message names no fingerprint."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyMismatch(f"{hostname} offered {key.get_name()} {key.fingerprint}, which is not pinned")


def _pinned_host_keys(spec: ConnectionSpec) -> list[paramiko.PKey]:
    """The spec's pinned keys, at most one per key type. Raises HostKeyMismatch."""
    if not spec.pinned_host_keys:
        raise HostKeyMismatch(f"no host key is pinned for {spec.host}:{spec.port}; pin one first")
    keys: list[paramiko.PKey] = []
    seen_types: set[str] = set()
    for line in spec.pinned_host_keys:
        try:
            key = _parse_public_key_line(line)
        except ValueError as exc:
            raise HostKeyMismatch(f"a pinned host key for {spec.host}:{spec.port} is unreadable") from exc
        # HostKeys holds one key per type and host; a second one would silently replace the first.
        if key.get_name() in seen_types:
            raise HostKeyMismatch(f"two pinned {key.get_name()} keys for {spec.host}:{spec.port}; pin one per type")
        seen_types.add(key.get_name())
        keys.append(key)
    return keys


# ------------------------------------------------------------------------------------- private keys


def load_private_key(text: str, passphrase: str | None) -> paramiko.PKey:
    """Load ed25519/ecdsa/rsa private key text (OpenSSH or PEM). Raises KeyPassphraseWrong, KeyInvalid."""
    data = text.encode()
    password = passphrase.encode() if passphrase else None
    loader = serialization.load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data else _load_pem
    try:
        loaded = loader(data, password)
    except TypeError as exc:
        # cryptography signals "encrypted but no password" and "password but not encrypted" with TypeError.
        if password is None:
            raise KeyPassphraseWrong("the private key is encrypted and no passphrase was given") from exc
        return load_private_key(text, None)
    except ValueError as exc:
        if password is not None and _is_encrypted(loader, data):
            raise KeyPassphraseWrong("the passphrase does not open the private key") from exc
        raise KeyInvalid("the private key text is not a readable ed25519, ecdsa or rsa key") from exc
    except UnsupportedAlgorithm as exc:
        raise KeyInvalid("the private key text is not a readable ed25519, ecdsa or rsa key") from exc
    key_class: type[paramiko.PKey]
    if isinstance(loaded, ed25519.Ed25519PrivateKey):
        key_class = paramiko.Ed25519Key
    elif isinstance(loaded, ec.EllipticCurvePrivateKey):
        key_class = paramiko.ECDSAKey
    elif isinstance(loaded, rsa.RSAPrivateKey):
        key_class = paramiko.RSAKey
    else:
        raise KeyInvalid(f"unsupported private key type {type(loaded).__name__}")
    try:
        return key_class.from_private_key(io.StringIO(text), password=passphrase or None)
    except paramiko.SSHException as exc:
        raise KeyInvalid(f"paramiko cannot use this {key_class.__name__}") from exc


def _load_pem(data: bytes, password: bytes | None) -> object:
    return serialization.load_pem_private_key(data, password)


def _is_encrypted(loader: Callable[[bytes, bytes | None], object], data: bytes) -> bool:
    try:
        loader(data, None)
    except TypeError:
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False
    return False


# ------------------------------------------------------------------------------------ retry, budget


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient connect faults (Unreachable, connect timeouts)."""

    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay_s(self, failed_attempts: int, rng: random.Random) -> float:
        """The pause after `failed_attempts` failures: uniform in [0, min(max, base * 2**(n-1))]."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (failed_attempts - 1)))


# Sliding window of the last minute's new sessions: a sorted set of (member, start time in ms).
_BUDGET_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


class SessionBudget:
    """A cluster-wide budget of NEW SSH sessions per minute, shared by every worker through Redis."""

    window_ms = 60_000

    def __init__(
        self,
        redis_client: redis.Redis,
        cluster_key: str,
        per_minute_limit: int,
        *,
        max_wait_s: float = 10.0,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if per_minute_limit < 1:
            raise ValueError("per_minute_limit must be at least 1")
        self.cluster_key = cluster_key
        self.per_minute_limit = per_minute_limit
        self.max_wait_s = max_wait_s
        self.redis_key = f"{key_prefix}:budget:{cluster_key}"
        self._script = redis_client.register_script(_BUDGET_LUA)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def try_take(self) -> float:
        """Take one session if the window allows: 0.0, else the seconds until one frees up."""
        now_ms = int(self._clock() * 1000)
        member = f"{now_ms}:{secrets.token_hex(8)}"
        wait_ms = self._script(keys=[self.redis_key], args=[now_ms, self.window_ms, self.per_minute_limit, member])
        return int(wait_ms) / 1000

    def take(self) -> None:
        """Take one session, waiting with jitter up to max_wait_s. Raises SessionBudgetExhausted."""
        deadline = self._clock() + self.max_wait_s
        while True:
            wait_s = self.try_take()
            if wait_s == 0:
                return
            remaining_s = deadline - self._clock()
            if remaining_s <= 0:
                raise SessionBudgetExhausted(
                    f"cluster {self.cluster_key} allows {self.per_minute_limit} new SSH sessions a minute; "
                    f"none freed up within {self.max_wait_s:g}s"
                )
            # Jitter spreads the workers that all wait for the same freed slot.
            pause_s = min(remaining_s, wait_s + self._rng.uniform(0, 0.5))
            logger.info(EVENT_SESSION_BUDGET_WAIT, extra={"cluster": self.cluster_key, "wait_s": round(pause_s, 3)})
            self._sleep(pause_s)


# ------------------------------------------------------------------------------------------- breaker


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # the cool-down is over: the next connect is the one trial


# Returns "closed" (go), "trial" (go, as the single half-open trial) or "open" (fail fast).
_BREAKER_BEFORE_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then return 'closed' end
local now = tonumber(ARGV[1])
if state == 'open' then
  if now < tonumber(redis.call('HGET', KEYS[1], 'open_until')) then return 'open' end
else
  if now < tonumber(redis.call('HGET', KEYS[1], 'trial_until')) then return 'open' end
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'trial_until', now + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 'trial'
"""

# Counts consecutive connect failures within a window; returns the state after this failure.
_BREAKER_FAILURE_LUA = """
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'open' then return 'open' end
if state == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + cooldown)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 'reopened'
end
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
local started = tonumber(redis.call('HGET', KEYS[1], 'window_start') or '0')
if failures == 0 or now - started > window then
  failures = 1
  started = now
else
  failures = failures + 1
end
redis.call('HSET', KEYS[1], 'failures', failures, 'window_start', started)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if failures >= threshold then
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + cooldown)
  return 'opened'
end
return 'closed'
"""


def breaker_state(
    redis_client: redis.Redis,
    cluster_key: str,
    *,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    clock: Callable[[], float] = time.time,
) -> BreakerState:
    """The cluster's breaker state for the UI: anything but CLOSED shows the cluster as degraded."""
    fields = redis_client.hmget(_breaker_key(key_prefix, cluster_key), ["state", "open_until"])
    state = fields[0].decode() if isinstance(fields[0], bytes) else fields[0]
    if state == "open" and clock() >= float(fields[1]):
        return BreakerState.HALF_OPEN
    if state in ("open", "half_open"):
        return BreakerState(state)
    return BreakerState.CLOSED


def _breaker_key(key_prefix: str, cluster_key: str) -> str:
    return f"{key_prefix}:breaker:{cluster_key}"


class CircuitBreaker:
    """A per-cluster breaker on connect refusals/timeouts, kept in Redis so that all workers agree.

    Every failed connect attempt counts, retries included: a pool retrying 3 times adds 3 failures.
    Auth and host-key failures prove the host is up and close the breaker.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        failure_threshold: int = 5,
        window_s: float = 60.0,
        cooldown_s: float = 120.0,
        trial_timeout_s: float = 60.0,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        # A trial whose worker died never reports; another worker may try again after this long.
        self.trial_timeout_s = trial_timeout_s
        self.key_prefix = key_prefix
        self._redis = redis_client
        self._before = redis_client.register_script(_BREAKER_BEFORE_LUA)
        self._failure = redis_client.register_script(_BREAKER_FAILURE_LUA)
        self._clock = clock
        self._ttl_ms = int((window_s + cooldown_s + trial_timeout_s) * 2000)

    def before_connect(self, cluster_key: str) -> None:
        """Let a connect attempt through, or fail fast while open. Raises ClusterDegraded."""
        verdict = self._before(
            keys=[_breaker_key(self.key_prefix, cluster_key)], args=[self._clock(), self.trial_timeout_s, self._ttl_ms]
        )
        if _text(verdict) == "open":
            raise ClusterDegraded(f"cluster {cluster_key} is degraded: recent connects failed; retry later")

    def record_failure(self, cluster_key: str) -> BreakerState:
        """Count one connect refusal/timeout; returns the state after it."""
        verdict = _text(
            self._failure(
                keys=[_breaker_key(self.key_prefix, cluster_key)],
                args=[self._clock(), self.failure_threshold, self.window_s, self.cooldown_s, self._ttl_ms],
            )
        )
        if verdict in ("opened", "reopened"):
            logger.warning(EVENT_BREAKER_OPENED, extra={"cluster": cluster_key, "cooldown_s": self.cooldown_s})
        return BreakerState.CLOSED if verdict == "closed" else BreakerState.OPEN

    def record_success(self, cluster_key: str) -> None:
        """The host answered: close the breaker and forget earlier failures."""
        self._redis.delete(_breaker_key(self.key_prefix, cluster_key))

    def state(self, cluster_key: str) -> BreakerState:
        """See `breaker_state`."""
        return breaker_state(self._redis, cluster_key, key_prefix=self.key_prefix, clock=self._clock)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -------------------------------------------------------------------------------------------- socket


def _open_socket(host: str, port: int, timeout_s: float) -> socket.socket:
    """A connected TCP socket with TCP_NODELAY. Raises Unreachable, TransportTimeout."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except TimeoutError as exc:
        raise TransportTimeout(
            f"TCP connect to {host}:{port} timed out after {timeout_s:g}s", during_connect=True
        ) from exc
    except socket.gaierror as exc:
        raise Unreachable(f"cannot resolve {host}") from exc
    except OSError as exc:
        raise Unreachable(f"cannot reach {host}:{port}: {exc.strerror or type(exc).__name__}") from exc
    # Nagle's algorithm otherwise adds ~40 ms to every command (LOCAL_CLUSTER.md: 48 ms vs 3 ms an exec).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _handshake_error(host: str, port: int, timeout_s: float, elapsed_s: float) -> TransportError:
    # paramiko reports a banner/kex timeout and a dropped handshake with the same SSHException text,
    # so the elapsed time tells them apart.
    if elapsed_s >= timeout_s * 0.9:
        return TransportTimeout(f"SSH handshake with {host}:{port} timed out after {timeout_s:g}s", during_connect=True)
    return Unreachable(f"SSH handshake with {host}:{port} failed")


# ---------------------------------------------------------------------------------------------- pool


@dataclass
class _Pooled:
    key: tuple[str, str, int, str]
    client: paramiko.SSHClient
    transport: paramiko.Transport
    channel_slots: threading.BoundedSemaphore
    last_used: float
    in_use: int = 0

    def close(self) -> None:
        self.client.close()


class _ConnectionDead(Exception):
    """The pooled transport is gone: reconnect once."""


# The only shell text this module writes itself besides shlex.join output (see run_sequence).
_SEQUENCE_SEPARATOR = " ; "
_LAST_EXIT_STATUS = ' "$?"'
_TO_STDERR = " >&2"


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
    ) -> CommandResult:
        """Run one argv on the cluster. Raises TransportError subclasses; RemoteCommandFailed only if check."""
        argv = validate_argv(argv)
        if stdin is not None and not isinstance(stdin, bytes):
            raise TypeError("stdin must be bytes or None")
        exit_code, out, err, duration_s = self._execute(spec, identity, shlex.join(argv), argv, stdin, timeout_s)
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
    ) -> list[CommandResult]:
        """Run several argv lists in ONE exec, in order, each whatever the previous one's status.

        The command line is, for each part, `shlex.join(argv) ; printf '\\n%s %s\\n' MARK "$?" ;
        printf '\\n%s\\n' MARK >&2`, parts joined by ` ; `. MARK is a fresh random hex token per call, so
        output cannot forge it. The fixed fragments ` ; `, ` "$?"` and ` >&2` are the only shell text not
        made by shlex.join; they need a POSIX-style login shell (sh, bash, zsh, ksh), not csh/tcsh.
        Each part gets its own exit code, stdout and stderr; duration_s is the whole exec's. The timeout
        covers the whole exec; there is no stdin. Raises TransportError subclasses, SequenceOutputMalformed
        when markers are missing, RemoteCommandFailed (first failing part) only if check.
        """
        if not isinstance(argvs, list) or not argvs:
            raise TypeError("argvs must be a non-empty list of argv lists")
        parts = [validate_argv(argv) for argv in argvs]
        marker = f"NP_PART_{secrets.token_hex(16)}"
        status_printf = shlex.join(["printf", "\\n%s %s\\n", marker]) + _LAST_EXIT_STATUS
        stderr_printf = shlex.join(["printf", "\\n%s\\n", marker]) + _TO_STDERR
        line = _SEQUENCE_SEPARATOR.join(
            _SEQUENCE_SEPARATOR.join([shlex.join(argv), status_printf, stderr_printf]) for argv in parts
        )
        log_argv = [arg for argv in parts for arg in [*argv, ";"]][:-1]
        _code, out, err, duration_s = self._execute(spec, identity, line, log_argv, None, timeout_s)
        results = _split_sequence_output(parts, marker, out, err, duration_s)
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
                if entry is not None:
                    if entry.transport.is_active():
                        entry.in_use += 1
                        return entry
                    del self._entries[key]
            if entry is not None:
                logger.info(EVENT_RECONNECT, extra={**_entry_log(entry), "reason": "transport_inactive"})
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
        host_keys = _pinned_host_keys(spec)
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
            client = self._handshake(spec, pkey, host_keys)
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
        )

    def _handshake(
        self, spec: ConnectionSpec, pkey: paramiko.PKey | None, host_keys: list[paramiko.PKey]
    ) -> paramiko.SSHClient:
        """TCP connect, pinned host key check and auth. Raises the TransportError of the failure."""
        timeout_s = spec.connect_timeout_s
        sock = _open_socket(spec.host, spec.port, timeout_s)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_PinnedKeysOnly())
        # paramiko looks known hosts up as "[host]:port" unless the port is 22; the first pinned key's
        # type is the one paramiko asks the server for.
        entry_name = spec.host if spec.port == 22 else f"[{spec.host}]:{spec.port}"
        for key in host_keys:
            client.get_host_keys().add(entry_name, key.get_name(), key)
        started = time.monotonic()
        try:
            client.connect(
                spec.host,
                port=spec.port,
                username=spec.username,
                pkey=pkey,
                password=spec.password,
                sock=sock,
                timeout=timeout_s,
                banner_timeout=timeout_s,
                auth_timeout=timeout_s,
                channel_timeout=timeout_s,
                allow_agent=False,
                look_for_keys=False,
            )
        except HostKeyMismatch:
            client.close()
            sock.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            sock.close()
            raise HostKeyMismatch(
                f"{spec.host}:{spec.port} offered {exc.key.get_name()} {exc.key.fingerprint}, "
                "which differs from the pinned key"
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            sock.close()
            raise AuthFailed(f"{spec.username}@{spec.host}:{spec.port} refused our credentials") from exc
        except (paramiko.SSHException, EOFError, OSError) as exc:
            client.close()
            sock.close()
            raise _handshake_error(spec.host, spec.port, timeout_s, time.monotonic() - started) from exc
        return client

    # -- executing

    def _execute(
        self,
        spec: ConnectionSpec,
        identity: str,
        line: str,
        log_argv: Sequence[str],
        stdin: bytes | None,
        timeout_s: float,
    ) -> tuple[int, str, str, float]:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        started = time.monotonic()
        deadline = started + timeout_s
        entry, channel = self._lease_channel(spec, identity, deadline)
        log = {**_entry_log(entry), "argv": redact_argv(log_argv)}
        try:
            exit_code, out, err = _exchange(channel, line, stdin, deadline)
        except TransportTimeout:
            logger.warning(EVENT_COMMAND_TIMEOUT, extra={**log, "timeout_s": timeout_s})
            _terminate_remote(channel)
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
                "stderr": _trim(stderr) if exit_code != 0 else "",
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


def command_line(line: str, *, has_stdin: bool) -> str:
    """The line to exec. A command given no stdin reads /dev/null on the cluster instead of waiting for our EOF.

    paramiko sends a channel's EOF outside the channel's lock, so for a command that ends at once the EOF can
    follow the CLOSE our reader thread sends back; OpenSSH then drops the whole connection ("ieof packet
    referred to nonexistent channel", paramiko #1705), failing every other command on it. Sending nothing
    after the exec removes the race; the remote shell (POSIX, as `run_sequence` needs too) gives the stdin.
    """
    return line if has_stdin else f"exec </dev/null; {line}"


def _exchange(channel: paramiko.Channel, line: str, stdin: bytes | None, deadline: float) -> tuple[int, bytes, bytes]:
    """Exec `line`, feed stdin, drain stdout and stderr together. Raises TransportTimeout, Unreachable."""
    try:
        channel.exec_command(command_line(line, has_stdin=bool(stdin)))
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise Unreachable("the connection was lost before the command started") from exc
    if stdin:
        # A thread, so that a command producing output before reading all its input cannot deadlock us.
        threading.Thread(target=_feed_stdin, args=(channel, stdin), name="ssh-stdin", daemon=True).start()
    out: list[bytes] = []
    err: list[bytes] = []
    # stdout and stderr share the channel's window: both must be drained or the remote side blocks.
    while True:
        while channel.recv_ready():
            out.append(channel.recv(_READ_CHUNK))
        while channel.recv_stderr_ready():
            err.append(channel.recv_stderr(_READ_CHUNK))
        remaining_s = deadline - time.monotonic()
        if channel.eof_received or channel.closed:
            if channel.recv_ready() or channel.recv_stderr_ready():
                continue
            if not channel.status_event.wait(max(0.0, remaining_s)):
                raise TransportTimeout("the command did not finish before its timeout", during_connect=False)
            if channel.exit_status == -1 and not channel.get_transport().is_active():
                raise Unreachable("the connection was lost during the command")
            return channel.exit_status, b"".join(out), b"".join(err)
        if remaining_s <= 0:
            raise TransportTimeout("the command did not finish before its timeout", during_connect=False)
        select.select([channel], [], [], remaining_s)


def _terminate_remote(channel: paramiko.Channel) -> None:
    """Send SIGTERM to the timed-out remote command (RFC 4254 §6.9 "signal", honoured by OpenSSH >= 7.9).

    Closing the channel alone leaves a silent command such as `sleep` running on the login node until it
    ends by itself. paramiko 5.1 has no public call for this request, hence its private sender.
    """
    message = paramiko.Message()
    message.add_byte(cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string("signal")
    message.add_boolean(False)
    message.add_string("TERM")
    try:
        channel.transport._send_user_message(message)
    except (OSError, EOFError, paramiko.SSHException):
        # The connection is already gone: so is the command's session.
        return


def _feed_stdin(channel: paramiko.Channel, data: bytes) -> None:
    try:
        channel.sendall(data)
        channel.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        # The command exited or closed stdin before reading it all, or we closed the channel on timeout.
        return


def _split_sequence_output(
    parts: list[list[str]], marker: str, out: str, err: str, duration_s: float
) -> list[CommandResult]:
    """Cut run_sequence's output at its markers. Raises SequenceOutputMalformed."""
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


def _forget_pool_after_fork(pool_ref: weakref.ref[ConnectionPool]) -> None:
    pool = pool_ref()
    if pool is not None:
        pool._forget_after_fork()


def _entry_log(entry: _Pooled) -> dict[str, object]:
    identity, host, port, username = entry.key
    return {"identity": identity, "host": host, "port": port, "remote_user": username}


# --------------------------------------------------------------------------------- process default


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
) -> CommandResult:
    """`ConnectionPool.run` on the installed default pool. Raises RuntimeError if none is installed."""
    return _require_default_pool().run(spec, argv, identity=identity, stdin=stdin, timeout_s=timeout_s, check=check)


def run_sequence(
    spec: ConnectionSpec, argvs: list[list[str]], *, identity: str, timeout_s: float, check: bool = False
) -> list[CommandResult]:
    """`ConnectionPool.run_sequence` on the installed default pool. Raises RuntimeError if none is installed."""
    return _require_default_pool().run_sequence(spec, argvs, identity=identity, timeout_s=timeout_s, check=check)
