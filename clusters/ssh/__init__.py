"""SSH to a cluster's login node, one module per concept; this file re-exports what callers use.

`spec` (ConnectionSpec), `results` (CommandResult), `errors` (TransportError and its coded subclasses),
`argv` (checking and redacting argv, the exec line), `sequence` (several argvs in one exec), `host_keys`
(pins and fingerprints), `keys` (the one reader of private key text), `connect` (TCP, handshake, auth,
first-contact host key), `budget` (connect retries, the cluster-wide session budget), `breaker` (the
circuit breaker), `channel` (one command's I/O on a channel), `pool` (the per-process connection pool,
`run`/`run_sequence`), `default_pool` (the process's installed pool), `transfer` (file upload/download).

Must never know Django, models, settings or which member a connection belongs to beyond the opaque
`identity` string: configuration comes in as arguments and a plain ConnectionSpec. Secrets in a spec
never appear in a repr, a log line, a pool key or an exception message.
"""

from clusters.ssh.argv import redact_argv, validate_argv
from clusters.ssh.breaker import BreakerState, CircuitBreaker, breaker_state
from clusters.ssh.budget import DEFAULT_KEY_PREFIX, RetryPolicy, SessionBudget
from clusters.ssh.channel import DEFAULT_MAX_OUTPUT_BYTES
from clusters.ssh.connect import fetch_host_key
from clusters.ssh.errors import (
    AuthFailed,
    ClusterDegraded,
    HostKeyMismatch,
    KeyInvalid,
    KeyPassphraseWrong,
    RemoteCommandFailed,
    RemoteFileMissing,
    RemoteFileTooLarge,
    RemoteOutputTooLarge,
    RemotePathForbidden,
    SequenceOutputMalformed,
    SessionBudgetExhausted,
    TransferCorrupted,
    TransportError,
    TransportTimeout,
    Unreachable,
)
from clusters.ssh.host_keys import fingerprint_sha256, pin_replacing_its_type
from clusters.ssh.keys import load_private_key
from clusters.ssh.pool import ConnectionPool
from clusters.ssh.results import CommandResult
from clusters.ssh.spec import ConnectionSpec

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "AuthFailed",
    "BreakerState",
    "CircuitBreaker",
    "ClusterDegraded",
    "CommandResult",
    "ConnectionPool",
    "ConnectionSpec",
    "HostKeyMismatch",
    "KeyInvalid",
    "KeyPassphraseWrong",
    "RemoteCommandFailed",
    "RemoteFileMissing",
    "RemoteFileTooLarge",
    "RemoteOutputTooLarge",
    "RemotePathForbidden",
    "RetryPolicy",
    "SequenceOutputMalformed",
    "SessionBudget",
    "SessionBudgetExhausted",
    "TransferCorrupted",
    "TransportError",
    "TransportTimeout",
    "Unreachable",
    "breaker_state",
    "fetch_host_key",
    "fingerprint_sha256",
    "load_private_key",
    "pin_replacing_its_type",
    "redact_argv",
    "validate_argv",
]
