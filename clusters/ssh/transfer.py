"""File upload and download between the portal machine and a cluster, over the pooled SSH connection.

Owns: how file bytes cross the wire (raw exec channels running `dd` on byte ranges, never SFTP), the
`<path>.part` then `mv` finish, size and optional sha256 checks, cleanup of partial files, progress
reporting, and when the pooled connection re-keys during big transfers.

Must never know: Django, models, settings, or whether a remote path is allowed for a member: callers
resolve and check paths with `clusters.paths` first. Remote paths travel only as argv items after `--`,
joined by the transport's `shlex.join`; this module never writes shell text.

Why raw channels: measured on loopback (LOCAL_CLUSTER.md), paramiko SFTP reaches about half of OpenSSH
scp, while an exec channel streaming `dd`, with a larger window and packets and with AES-GCM instead of
aes-ctr + hmac-sha2-256, matches or beats scp both ways (bench/transport.py). Two parallel channels did
not help: one paramiko transport encrypts, decrypts and MACs under one lock, on a 2-core machine.

Why segments and explicit re-keys: paramiko re-keys by itself after 512 MiB in either direction. When
that happens just as a command ends, the server's CHANNEL_CLOSE reaches paramiko's reader thread during
the key exchange; answering it waits for the exchange that only that same thread can finish, and the
connection dies with "Key-exchange timed out". So every transfer moves in segments of at most
`SEGMENT_BYTES`, one channel each, and re-keys between segments (when no channel of ours can be closing)
often enough that paramiko's own 512 MiB trigger is never reached. The same re-key is where a big
transfer switches the pooled connection to AES-GCM: the one change this module makes to a connection.

Errors: the transport's classes (TransportTimeout when a stream stalls, Unreachable when the connection
drops, RemoteCommandFailed when a remote `dd`/`stat`/`mv` fails) plus TransferCorrupted, RemoteFileMissing
and RemoteFileTooLarge (all in clusters.ssh.errors).
Local file errors propagate as OSError.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shlex
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import paramiko

from clusters.ssh.argv import command_line
from clusters.ssh.errors import (
    RemoteCommandFailed,
    RemoteFileMissing,
    RemoteFileTooLarge,
    TransferCorrupted,
    TransportError,
    TransportTimeout,
    Unreachable,
)
from clusters.ssh.pool import ConnectionPool
from clusters.ssh.results import CommandResult
from clusters.ssh.spec import ConnectionSpec

logger = logging.getLogger(__name__)

EVENT_TRANSFER = "ssh.transfer"
EVENT_TRANSFER_FAILED = "ssh.transfer_failed"
EVENT_TRANSFER_CLEANUP_FAILED = "ssh.transfer_cleanup_failed"
EVENT_REKEY = "ssh.transfer_rekey"

ProgressCallback = Callable[[int, int], None]

SEGMENT_BYTES = 128 * 2**20
# Re-key before a segment would take the bytes moved since the last re-key past this. Half of
# paramiko's own 512 MiB trigger leaves room for the commands other threads run on the connection.
REKEY_AFTER_BYTES = 256 * 2**20
_CHUNK_BYTES = 2**20
# An 8 MiB window and 128 KiB packets took downloads from ≈170 to ≈250-310 MiB/s over paramiko's
# 2 MiB / 32 KiB defaults; uploads gain nothing, as sshd accepts at most 32 KiB packets from us.
_WINDOW_BYTES = 8 * 2**20
_MAX_PACKET_BYTES = 128 * 2**10
_COMMAND_TIMEOUT_S = 30.0
_AEAD_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
# Below this a re-key (≈10 ms) costs more than the faster cipher saves.
_AEAD_MIN_BYTES = 16 * 2**20
# sha256sum reads the whole file; allow it a slow disk.
_HASH_BYTES_PER_S = 50 * 2**20


@dataclass(frozen=True)
class TransferResult:
    size_bytes: int
    duration_s: float
    sha256: str | None  # hex digest, set only when verification by sha256 was asked for

    @property
    def mib_per_s(self) -> float:
        return self.size_bytes / 2**20 / self.duration_s if self.duration_s > 0 else 0.0


def upload(
    pool: ConnectionPool,
    spec: ConnectionSpec,
    *,
    identity: str,
    local_path: str | os.PathLike[str],
    remote_path: str,
    progress: ProgressCallback | None = None,
    verify_sha256: bool = False,
    stall_timeout_s: float = 60.0,
) -> TransferResult:
    """Copy a local file to `remote_path` via `<remote_path>.part`, checked by size (and sha256 if asked).

    Raises TransportError subclasses, TransferCorrupted, OSError (local file).
    """
    started = time.monotonic()
    part_path = remote_path + ".part"
    total = os.path.getsize(local_path)
    local_hash = hashlib.sha256() if verify_sha256 else None
    try:
        with open(local_path, "rb") as source:
            for offset in _segment_offsets(total):
                length = min(SEGMENT_BYTES, total - offset)
                _upload_segment(
                    pool,
                    spec,
                    identity,
                    source,
                    part_path,
                    offset,
                    length,
                    total,
                    local_hash,
                    progress,
                    stall_timeout_s,
                )
        remote_size, remote_hash = _remote_size_and_hash(pool, spec, identity, part_path, total, verify_sha256)
        _check_same(total, remote_size, local_hash, remote_hash, "upload")
        mv_argv = ["mv", "-T", "-f", "--", part_path, remote_path]
        pool.run(spec, mv_argv, identity=identity, timeout_s=_COMMAND_TIMEOUT_S, check=True)
    except BaseException as exc:
        _log_failure("upload", spec, exc)
        _remove_remote_part(pool, spec, identity, part_path)
        raise
    return _finish("upload", spec, total, started, local_hash)


def download(
    pool: ConnectionPool,
    spec: ConnectionSpec,
    *,
    identity: str,
    remote_path: str,
    local_path: str | os.PathLike[str],
    progress: ProgressCallback | None = None,
    verify_sha256: bool = False,
    stall_timeout_s: float = 60.0,
    max_bytes: int | None = None,
) -> TransferResult:
    """Copy `remote_path` to a local file via `<local_path>.part`, checked by size (and sha256 if asked).

    Raises TransportError subclasses (RemoteFileMissing if the remote file is missing or unreadable,
    RemoteFileTooLarge, before a byte is copied, if it is larger than `max_bytes`), TransferCorrupted,
    OSError (local file).
    """
    started = time.monotonic()
    part_path = Path(f"{os.fspath(local_path)}.part")
    stat_argv = ["stat", "-L", "-c", "%s", "--", remote_path]
    stat = pool.run(spec, stat_argv, identity=identity, timeout_s=_COMMAND_TIMEOUT_S)
    if stat.exit_code != 0:
        raise RemoteFileMissing(f"remote 'stat' exited with status {stat.exit_code}", result=stat)
    total = _parse_size(stat)
    if max_bytes is not None and total > max_bytes:
        raise RemoteFileTooLarge(f"the remote file has {total} bytes, over {max_bytes}", max_bytes=max_bytes)
    local_hash = hashlib.sha256() if verify_sha256 else None
    try:
        with open(part_path, "wb") as target:
            for offset in _segment_offsets(total):
                length = min(SEGMENT_BYTES, total - offset)
                _download_segment(
                    pool,
                    spec,
                    identity,
                    target,
                    remote_path,
                    offset,
                    length,
                    total,
                    local_hash,
                    progress,
                    stall_timeout_s,
                )
        local_size = part_path.stat().st_size
        remote_hash = _remote_size_and_hash(pool, spec, identity, remote_path, total, verify_sha256)[1]
        _check_same(total, local_size, local_hash, remote_hash, "download")
        os.replace(part_path, local_path)
    except BaseException as exc:
        _log_failure("download", spec, exc)
        part_path.unlink(missing_ok=True)
        raise
    return _finish("download", spec, total, started, local_hash)


def read_ranges(
    pool: ConnectionPool,
    spec: ConnectionSpec,
    *,
    identity: str,
    remote_path: str,
    ranges: list[tuple[int, int]],
    stall_timeout_s: float = 60.0,
) -> tuple[list[bytes], TransferResult]:
    """The bytes of each (offset, length) of a remote file, one `dd` channel a range, into memory: for the parts of
    a file that grows (a running job's trajectory frames) without copying the rest. Callers keep ranges small.

    Raises TransportError subclasses (RemoteCommandFailed when the file is missing or unreadable),
    TransferCorrupted when a range is not there whole.
    """
    started = time.monotonic()
    parts = []
    try:
        for offset, length in ranges:
            buffer = io.BytesIO()
            _download_segment(
                pool, spec, identity, buffer, remote_path, offset, length, length, None, None, stall_timeout_s
            )
            parts.append(buffer.getvalue())
    except BaseException as exc:
        _log_failure("read", spec, exc)
        raise
    return parts, _finish("read", spec, sum(len(part) for part in parts), started, None)


# ------------------------------------------------------------------------------------------ segments


def _segment_offsets(total: int) -> range:
    # An empty file is still one (empty) segment, so that the remote `dd` creates the part file.
    return range(0, max(total, 1), SEGMENT_BYTES)


def _upload_segment(
    pool: ConnectionPool,
    spec: ConnectionSpec,
    identity: str,
    source: BinaryIO,
    part_path: str,
    offset: int,
    length: int,
    total: int,
    local_hash: hashlib._Hash | None,
    progress: ProgressCallback | None,
    stall_timeout_s: float,
) -> None:
    # The first segment truncates whatever an earlier failed attempt left; later ones write in place.
    placement = ["seek=0"] if offset == 0 else [f"seek={offset}", "oflag=seek_bytes", "conv=notrunc"]
    argv = ["dd", "bs=1M", *placement, "status=none", "--", f"of={part_path}"]
    with _pooled_channel(pool, spec, identity, stall_timeout_s) as channel:
        _prepare_transport(channel.get_transport(), length, total)
        started = time.monotonic()
        _exec(channel, argv, has_stdin=True)
        sent = 0
        try:
            while sent < length:
                chunk = source.read(min(_CHUNK_BYTES, length - sent))
                if not chunk:
                    raise TransferCorrupted("the local file shrank while it was being uploaded")
                channel.sendall(chunk)
                if local_hash is not None:
                    local_hash.update(chunk)
                sent += len(chunk)
                if progress is not None:
                    progress(offset + sent, total)
            channel.shutdown_write()
        except (TimeoutError, paramiko.SSHException, EOFError, OSError) as exc:
            # A remote `dd` that failed (disk full, permission) closes the channel under us: its exit
            # status and stderr say more than the broken pipe does.
            _raise_if_failed(channel, argv, started, stall_timeout_s)
            raise _stream_error(exc) from exc
        if length == 0 and progress is not None:
            progress(0, 0)
        _raise_if_failed(channel, argv, started, stall_timeout_s)


def _download_segment(
    pool: ConnectionPool,
    spec: ConnectionSpec,
    identity: str,
    target: BinaryIO,
    remote_path: str,
    offset: int,
    length: int,
    total: int,
    local_hash: hashlib._Hash | None,
    progress: ProgressCallback | None,
    stall_timeout_s: float,
) -> None:
    range_ops = [f"skip={offset}", f"count={length}", "iflag=skip_bytes,count_bytes"]
    argv = ["dd", "bs=1M", *range_ops, "status=none", "--", f"if={remote_path}"]
    with _pooled_channel(pool, spec, identity, stall_timeout_s) as channel:
        _prepare_transport(channel.get_transport(), length, total)
        started = time.monotonic()
        _exec(channel, argv, has_stdin=False)
        received = 0
        try:
            while chunk := channel.recv(_CHUNK_BYTES):
                target.write(chunk)
                if local_hash is not None:
                    local_hash.update(chunk)
                received += len(chunk)
                if progress is not None:
                    progress(offset + received, total)
        except (TimeoutError, paramiko.SSHException, EOFError, OSError) as exc:
            raise _stream_error(exc) from exc
        if length == 0 and progress is not None:
            progress(0, 0)
        _raise_if_failed(channel, argv, started, stall_timeout_s)
        if received != length:
            raise TransferCorrupted(f"expected {length} bytes at offset {offset}, received {received}")


def _exec(channel: paramiko.Channel, argv: list[str], *, has_stdin: bool) -> None:
    try:
        channel.exec_command(command_line(shlex.join(argv), has_stdin=has_stdin))
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise Unreachable("the connection was lost before the transfer started") from exc


def _raise_if_failed(channel: paramiko.Channel, argv: list[str], started: float, stall_timeout_s: float) -> None:
    """Wait for the remote command's exit. Raises TransportTimeout, Unreachable, RemoteCommandFailed."""
    if not channel.status_event.wait(stall_timeout_s):
        raise TransportTimeout("the remote end of the transfer did not finish in time", during_connect=False)
    exit_code = channel.exit_status
    if exit_code == 0:
        return
    if exit_code == -1 and not channel.get_transport().is_active():
        raise Unreachable("the connection was lost during the transfer")
    stderr = b""
    while channel.recv_stderr_ready():
        stderr += channel.recv_stderr(65536)
    result = CommandResult(tuple(argv), exit_code, "", stderr.decode("utf-8", "replace"), time.monotonic() - started)
    raise RemoteCommandFailed(f"remote command 'dd' exited with status {exit_code}", result=result)


def _stream_error(exc: BaseException) -> TransportError:
    if isinstance(exc, TimeoutError):
        return TransportTimeout("the transfer stalled: no data moved within the stall timeout", during_connect=False)
    return Unreachable("the connection was lost during the transfer")


# ---------------------------------------------------------------------------------- connection, keys


@contextlib.contextmanager
def _pooled_channel(
    pool: ConnectionPool, spec: ConnectionSpec, identity: str, timeout_s: float
) -> Iterator[paramiko.Channel]:
    """A new session channel on the pooled connection, sized for bulk data. Raises TransportError subclasses."""
    with pool.leased_transport(spec, identity=identity) as pooled_transport:
        try:
            channel = pooled_transport.open_session(
                window_size=_WINDOW_BYTES, max_packet_size=_MAX_PACKET_BYTES, timeout=timeout_s
            )
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise Unreachable("the server gave no channel for the transfer") from exc
        channel.settimeout(timeout_s)
        try:
            yield channel
        finally:
            # Closing from our side first means the server's CHANNEL_CLOSE needs no reply from
            # paramiko's reader thread, which is the step that can deadlock with a key exchange.
            channel.close()


_rekey_lock = threading.Lock()
_bytes_since_rekey: weakref.WeakKeyDictionary[paramiko.Transport, int] = weakref.WeakKeyDictionary()
_aead_offered: weakref.WeakSet[paramiko.Transport] = weakref.WeakSet()


def _prepare_transport(transport: paramiko.Transport, segment_bytes: int, transfer_bytes: int) -> None:
    """Re-key now, while our new channel is idle, when a segment needs it. Raises Unreachable.

    Two reasons to re-key: the segment would pass REKEY_AFTER_BYTES since the last re-key, or the
    transfer is big and the connection does not use AES-GCM yet. paramiko prefers aes-ctr with a
    separate hmac-sha2-256, whose per-byte cost halved upload speed here (≈150 vs ≈270 MiB/s); GCM is
    put first in the connection's preferences, keeping every other cipher as a fallback for servers
    that lack it. This is asked once per connection and stays in force for its later re-keys.
    """
    with _rekey_lock:
        moved = _bytes_since_rekey.get(transport, 0)
        wants_aead = transfer_bytes >= _AEAD_MIN_BYTES and transport not in _aead_offered
        if wants_aead:
            options = transport.get_security_options()
            options.ciphers = _AEAD_CIPHERS + tuple(name for name in options.ciphers if name not in _AEAD_CIPHERS)
            _aead_offered.add(transport)
        if wants_aead or moved + segment_bytes > REKEY_AFTER_BYTES:
            started = time.monotonic()
            try:
                transport.renegotiate_keys()
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise Unreachable("the connection was lost while re-keying") from exc
            logger.info(
                EVENT_REKEY, extra={"after_bytes": moved, "cipher": transport.local_cipher, "duration_ms": _ms(started)}
            )
            moved = 0
        _bytes_since_rekey[transport] = moved + segment_bytes


# ------------------------------------------------------------------------------------------ checking


def _remote_size_and_hash(
    pool: ConnectionPool, spec: ConnectionSpec, identity: str, path: str, size: int, with_hash: bool
) -> tuple[int, str | None]:
    """The remote file's size and, if asked, sha256. Raises TransportError subclasses."""
    argvs = [["stat", "-L", "-c", "%s", "--", path]]
    if with_hash:
        argvs.append(["sha256sum", "--", path])
    timeout_s = _COMMAND_TIMEOUT_S + (size / _HASH_BYTES_PER_S if with_hash else 0)
    results = pool.run_sequence(spec, argvs, identity=identity, timeout_s=timeout_s, check=True)
    remote_hash = None
    if with_hash:
        # sha256sum prefixes the line with a backslash when the file name needs escaping.
        remote_hash = results[1].stdout.split(maxsplit=1)[0].lstrip("\\")
    return _parse_size(results[0]), remote_hash


def _parse_size(result: CommandResult) -> int:
    text = result.stdout.strip()
    if not text.isdigit():
        raise RemoteCommandFailed("remote 'stat' printed no size", result=result)
    return int(text)


def _check_same(
    expected_size: int, actual_size: int, local_hash: hashlib._Hash | None, remote_hash: str | None, what: str
) -> None:
    if actual_size != expected_size:
        raise TransferCorrupted(f"{what}: {expected_size} bytes sent, {actual_size} bytes arrived")
    if local_hash is not None and local_hash.hexdigest() != remote_hash:
        raise TransferCorrupted(f"{what}: the sha256 of the copy differs from the original's")


def _remove_remote_part(pool: ConnectionPool, spec: ConnectionSpec, identity: str, part_path: str) -> None:
    try:
        pool.run(spec, ["rm", "-f", "--", part_path], identity=identity, timeout_s=_COMMAND_TIMEOUT_S)
    except TransportError as exc:
        # The transfer's own error is the one to raise; a leftover .part is overwritten by the next attempt.
        logger.warning(EVENT_TRANSFER_CLEANUP_FAILED, extra={"host": spec.host, "error_code": exc.code})


def _log_failure(direction: str, spec: ConnectionSpec, exc: BaseException) -> None:
    logger.warning(
        EVENT_TRANSFER_FAILED,
        extra={"direction": direction, "host": spec.host, "error_code": getattr(exc, "code", type(exc).__name__)},
    )


def _finish(
    direction: str, spec: ConnectionSpec, size: int, started: float, local_hash: hashlib._Hash | None
) -> TransferResult:
    result = TransferResult(
        size_bytes=size,
        duration_s=time.monotonic() - started,
        sha256=local_hash.hexdigest() if local_hash is not None else None,
    )
    logger.info(
        EVENT_TRANSFER,
        extra={"direction": direction, "host": spec.host, "bytes": size, "duration_ms": _ms(started)},
    )
    return result


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
