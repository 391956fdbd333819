"""Every failure of the ssh package, as a `TransportError` with a stable `code`.

Owns the error classes and their codes; services translate them (STYLE §4). Must never know Django or
the portal's user-facing messages; a message never holds a secret.

Error codes (stable):
    AUTH_FAILED               the server refused our credentials (also: password auth disabled)
    KEY_PASSPHRASE_WRONG      the private key is encrypted and the passphrase is wrong or missing
    KEY_INVALID               the private key text cannot be read as an ed25519/ecdsa/rsa key
    HOST_KEY_MISMATCH         the server's key is not among the pinned ones (or the pins are unusable)
    UNREACHABLE               refused, DNS, no route, handshake dropped, connection lost mid-command (transient)
    TIMEOUT                   connect/banner/handshake or command timeout (transient; `during_connect` tells which)
    REMOTE_COMMAND_FAILED     non-zero exit with `check=True`; the result is on the exception
    REMOTE_PATH_FORBIDDEN     a path outside the member's roots (raised by clusters.paths)
    REMOTE_FILE_MISSING       a download's source does not exist or cannot be read (raised by ssh.transfer)
    REMOTE_FILE_TOO_LARGE     a remote file is larger than the caller allowed (ssh.transfer, small-file reads)
    REMOTE_OUTPUT_TOO_LARGE   a command printed more than its output cap; its channel was closed
    TRANSFER_CORRUPTED        the bytes that arrived differ from those sent (transient)
    SEQUENCE_OUTPUT_MALFORMED `run_sequence` could not find its markers (e.g. a non-POSIX login shell)
    SESSION_BUDGET_EXHAUSTED  the cluster's new-session budget stayed empty for the allowed wait (transient)
    CLUSTER_DEGRADED          the cluster's circuit breaker is open: fail fast (transient)
Redis errors from the budget or breaker propagate unchanged (`redis.RedisError`).
"""

from __future__ import annotations

from clusters.ssh.results import CommandResult


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


class TransferCorrupted(TransportError):
    """The bytes that arrived differ from those sent (size or sha256); retrying is reasonable."""

    code = "TRANSFER_CORRUPTED"
    is_transient = True


class RemoteFileMissing(RemoteCommandFailed):
    """A download's source cannot be stat'ed: it does not exist, or the member may not read it."""

    code = "REMOTE_FILE_MISSING"


class RemoteFileTooLarge(TransportError):
    """A remote file is larger than the caller allowed (a download's source: nothing was copied)."""

    code = "REMOTE_FILE_TOO_LARGE"

    def __init__(self, message: str, *, max_bytes: int) -> None:
        super().__init__(message)
        self.max_bytes = max_bytes


class RemoteOutputTooLarge(TransportError):
    """A command printed more than its caller's output cap (stdout and stderr together); it was stopped."""

    code = "REMOTE_OUTPUT_TOO_LARGE"

    def __init__(self, message: str, *, max_bytes: int) -> None:
        super().__init__(message)
        self.max_bytes = max_bytes
