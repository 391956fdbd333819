"""The one door from the portal to a cluster, as a member.

A member's credential becomes a `ConnectionSpec` (secrets decrypted only here, in the worker that
connects); commands run through this process's connection pool, under the profile's cluster-wide
session budget and circuit breaker (both in Redis); every command is recorded as a
RemoteCommandRecord; transport failures become PortalErrors with the transport's stable codes.
Must never be called from a web request: only Celery tasks and management commands connect.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache

from django.conf import settings
from django.utils import timezone
from redis import Redis
from redis.exceptions import RedisError

from clusters import ssh
from clusters.file_tar import tar_of, untar_argv
from clusters.models import ClusterCredential, ClusterProfile, RemoteCommandRecord
from clusters.paths import check_remote_realpaths, expand_root
from clusters.slurm import SlurmClient
from clusters.ssh import CommandResult, ConnectionPool, ConnectionSpec, TransportError, transfer
from portal.errors import (
    ClusterAuthFailed,
    ClusterHostKeyMismatch,
    ClusterUnreachable,
    Forbidden,
    InvalidInput,
    NotFound,
    PortalError,
    RemoteCommandError,
)

DEFAULT_COMMAND_TIMEOUT_S = 30.0
_pool_lock = threading.Lock()


def cluster_key(profile: ClusterProfile) -> str:
    return f"profile-{profile.pk}"


@cache
def redis_client() -> Redis:
    return Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5, socket_connect_timeout=5)


def _session_budget(key: str) -> ssh.SessionBudget | None:
    profile_id = int(key.removeprefix("profile-"))
    limit = ClusterProfile.objects.filter(pk=profile_id).values_list("new_sessions_per_minute", flat=True).first()
    return ssh.SessionBudget(redis_client(), key, limit) if limit else None


@cache
def connection_pool() -> ConnectionPool:
    """This process's pool (one per worker process; forks forget the parent's sockets)."""
    with _pool_lock:
        return ConnectionPool(budget_for=_session_budget, breaker=ssh.CircuitBreaker(redis_client()))


def cluster_health(profile: ClusterProfile) -> str:
    """'ok', 'degraded' (the circuit breaker stopped calling the login node for a while) or 'unknown' (the
    breaker's Redis is away)."""
    try:
        state = ssh.breaker_state(redis_client(), cluster_key(profile))
    except RedisError:
        return "unknown"
    return "ok" if state == ssh.BreakerState.CLOSED else "degraded"


def connection_spec(credential: ClusterCredential) -> ConnectionSpec:
    """The decrypted spec for a credential. Call only in the worker that connects."""
    profile = credential.profile
    is_key = credential.auth_kind == ClusterCredential.AuthKind.KEY
    return ConnectionSpec(
        host=profile.login_host,
        port=profile.login_port,
        username=credential.remote_username,
        pinned_host_keys=profile.pinned_host_key_lines,
        private_key=credential.secret.reveal() if is_key else None,
        passphrase=credential.passphrase.reveal() if is_key and credential.passphrase else None,
        password=None if is_key else credential.secret.reveal(),
        cluster_key=cluster_key(profile),
        max_channels=profile.max_sessions_per_user,
    )


def portal_error(exc: TransportError) -> PortalError:
    """The PortalError a user sees for a transport failure (same stable code, no host names)."""
    if isinstance(exc, ssh.HostKeyMismatch):
        return ClusterHostKeyMismatch()
    if isinstance(exc, ssh.KeyPassphraseWrong):
        return ClusterAuthFailed("The passphrase stored with your key does not open it.", code=exc.code)
    if isinstance(exc, ssh.AuthFailed):
        return ClusterAuthFailed(code=exc.code)
    if isinstance(exc, ssh.RemotePathForbidden):
        return Forbidden("That path is outside your project and scratch folders.", code=exc.code)
    if isinstance(exc, ssh.SessionBudgetExhausted | ssh.ClusterDegraded):
        return ClusterUnreachable("The cluster is busy or degraded; the portal will retry later.", code=exc.code)
    if isinstance(exc, ssh.RemoteFileMissing):
        return NotFound("That file is not in the folder on the cluster, or you may not read it.", code=exc.code)
    if isinstance(exc, ssh.RemoteFileTooLarge):
        return InvalidInput(
            f"That file on the cluster is larger than the {exc.max_bytes} bytes the portal reads here; "
            "check that it is the file you meant (not a huge file or a link to a device).",
            code=exc.code,
            details={"max_bytes": exc.max_bytes},
        )
    if isinstance(exc, ssh.RemoteOutputTooLarge):
        return RemoteCommandError(
            f"A command on the cluster printed more than the {exc.max_bytes} bytes the portal reads at once, so it "
            "was stopped; look in the job's folder for a file or link that is far larger than it should be.",
            code=exc.code,
            details={"max_bytes": exc.max_bytes},
        )
    if exc.is_transient:
        return ClusterUnreachable(code=exc.code)
    return RemoteCommandError(code=exc.code)


class MemberSession:
    """Commands on one cluster in one member's name, each recorded. Raises PortalErrors."""

    def __init__(
        self,
        credential: ClusterCredential,
        *,
        task_id: str = "",
        job_id: int | None = None,
        acting_user_id: int | None = None,
    ) -> None:
        self.credential = credential
        self.profile = credential.profile
        self.task_id = task_id
        self.job_id = job_id  # the job the commands are for, recorded with each of them
        self.acting_user_id = acting_user_id  # who asked; None only for the portal's own schedule (sync, finish)
        self._spec = connection_spec(credential)
        # A replaced credential gets a fresh pooled connection, never the old one's.
        self._identity = f"credential-{credential.pk}-{credential.updated_at.timestamp()}"

    @property
    def roots(self) -> tuple[str, str]:
        """(project root, scratch root) for this member on this cluster."""
        username = self.credential.remote_username
        return (
            str(expand_root(self.profile.project_root_pattern, username)),
            str(expand_root(self.profile.scratch_root_pattern, username)),
        )

    def _record(
        self,
        argv: Sequence[str],
        started_at: datetime,
        started_s: float,
        *,
        result: CommandResult | None,
        error_code: str = "",
        sent: int = 0,
        received: int | None = None,
    ) -> None:
        if received is None:
            received = len(result.stdout) + len(result.stderr) if result else 0
        RemoteCommandRecord.objects.create(
            user_id=self.credential.user_id,
            profile=self.profile,
            argv=ssh.redact_argv(list(argv)),
            exit_code=result.exit_code if result else None,
            error_code=error_code,
            duration_ms=int((time.monotonic() - started_s) * 1000),
            bytes_sent=sent,
            bytes_received=received,
            task_id=self.task_id,
            job_id=self.job_id,
            acting_user_id=self.acting_user_id,
            started_at=started_at,
        )

    def run(
        self,
        argv: list[str],
        *,
        timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
        stdin: bytes | None = None,
        check: bool = False,
        max_output_bytes: int = ssh.DEFAULT_MAX_OUTPUT_BYTES,
    ) -> CommandResult:
        """One argv; past `max_output_bytes` of output the command is stopped (REMOTE_OUTPUT_TOO_LARGE)."""
        started_at, started_s = timezone.now(), time.monotonic()
        try:
            result = connection_pool().run(
                self._spec,
                argv,
                identity=self._identity,
                stdin=stdin,
                timeout_s=timeout_s,
                check=check,
                max_output_bytes=max_output_bytes,
            )
        except TransportError as exc:
            failed = getattr(exc, "result", None)
            self._record(argv, started_at, started_s, result=failed, error_code=exc.code, sent=len(stdin or b""))
            raise portal_error(exc) from exc
        self._record(argv, started_at, started_s, result=result, sent=len(stdin or b""))
        return result

    def run_sequence(
        self,
        argvs: list[list[str]],
        *,
        timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
        max_output_bytes: int = ssh.DEFAULT_MAX_OUTPUT_BYTES,
    ) -> list[CommandResult]:
        """Several argvs in one exec (one record each); every part runs whatever the others returned.

        The output cap covers all parts together (REMOTE_OUTPUT_TOO_LARGE past it)."""
        started_at, started_s = timezone.now(), time.monotonic()
        try:
            results = connection_pool().run_sequence(
                self._spec, argvs, identity=self._identity, timeout_s=timeout_s, max_output_bytes=max_output_bytes
            )
        except TransportError as exc:
            for argv in argvs:
                self._record(argv, started_at, started_s, result=None, error_code=exc.code)
            raise portal_error(exc) from exc
        for argv, result in zip(argvs, results, strict=True):
            self._record(argv, started_at, started_s, result=result)
        return results

    def slurm(self) -> SlurmClient:
        """The SLURM adapter over this session; each part of a sequence is recorded and returned on its own."""

        def run(argv: Sequence[str], timeout_s: float) -> CommandResult:
            return self.run(list(argv), timeout_s=timeout_s)

        def run_sequence(argvs: Sequence[Sequence[str]], timeout_s: float) -> list[CommandResult]:
            return self.run_sequence([list(argv) for argv in argvs], timeout_s=timeout_s)

        def run_script(argv: Sequence[str], stdin: bytes, timeout_s: float) -> CommandResult:
            return self.run(list(argv), stdin=stdin, timeout_s=timeout_s)

        return SlurmClient(run=run, run_sequence=run_sequence, run_script=run_script)

    def confined(self, remote_path: str) -> str:
        """The remote realpath if the path (and its realpath) lies inside the member's roots. Raises Forbidden."""
        (resolved,) = self.confined_all([remote_path])
        return resolved

    def confined_all(self, remote_paths: list[str]) -> list[str]:
        """`confined` for many paths in one exec. Raises Forbidden if any lies outside the roots."""
        try:
            runner = lambda argv: self.run(argv, check=True)  # noqa: E731
            return [str(path) for path in check_remote_realpaths(runner, self.roots, remote_paths)]
        except ssh.RemotePathForbidden as exc:
            raise portal_error(exc) from exc

    def _transfer(
        self, direction: str, remote_path: str, call: Callable[[], transfer.TransferResult]
    ) -> transfer.TransferResult:
        started_at, started_s = timezone.now(), time.monotonic()
        argv = [direction, "--", remote_path]
        try:
            result = call()
        except TransportError as exc:
            self._record(argv, started_at, started_s, result=None, error_code=exc.code)
            raise portal_error(exc) from exc
        moved = CommandResult(tuple(argv), 0, "", "", result.duration_s)
        is_upload = direction == "upload"
        self._record(
            argv,
            started_at,
            started_s,
            result=moved,
            sent=result.size_bytes if is_upload else 0,
            received=0 if is_upload else result.size_bytes,
        )
        return result

    def write_files(self, directory: str, files: dict[str, bytes], *, timeout_s: float = 60.0) -> None:
        """Write small files into a directory in the roots, in one exec.

        Names are paths inside the directory (`namd/job.namd`), already cleaned by the caller; their
        folders must exist and lie in the roots (`jobs.remote.make_dirs`). The files travel as a tar
        stream on stdin: one round trip whatever their number.
        Raises Forbidden (REMOTE_PATH_FORBIDDEN), RemoteCommandError and the other PortalErrors.
        """
        if any(name.startswith(("/", "-")) or {"", ".", ".."} & set(name.split("/")) for name in files):
            raise ValueError("write_files takes relative paths without '.', '..' or empty parts")
        target = self.confined(directory)
        self.run(untar_argv(target), stdin=tar_of(files), timeout_s=timeout_s, check=True)

    def upload(
        self,
        local_path: str,
        remote_path: str,
        *,
        progress: transfer.ProgressCallback | None = None,
        verify_sha256: bool = False,
    ) -> transfer.TransferResult:
        """Copy a local file into the member's roots. Raises Forbidden (REMOTE_PATH_FORBIDDEN), PortalErrors."""
        target = self.confined(remote_path)
        return self._transfer(
            "upload",
            target,
            lambda: transfer.upload(
                connection_pool(),
                self._spec,
                identity=self._identity,
                local_path=local_path,
                remote_path=target,
                progress=progress,
                verify_sha256=verify_sha256,
            ),
        )

    def read_ranges(self, remote_path: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        """The bytes at each (offset, length) of a file in the member's roots (small parts of a large file).

        Raises Forbidden (REMOTE_PATH_FORBIDDEN) and the other PortalErrors (a missing file: REMOTE_COMMAND_FAILED)."""
        source = self.confined(remote_path)
        parts: list[bytes] = []

        def read() -> transfer.TransferResult:
            found, result = transfer.read_ranges(
                connection_pool(), self._spec, identity=self._identity, remote_path=source, ranges=ranges
            )
            parts.extend(found)
            return result

        self._transfer("download", source, read)
        return parts

    def download(
        self,
        remote_path: str,
        local_path: str,
        *,
        progress: transfer.ProgressCallback | None = None,
        verify_sha256: bool = False,
        max_bytes: int | None = None,
    ) -> transfer.TransferResult:
        """Copy a file from the member's roots to the portal, refused before any byte when over `max_bytes`.

        Raises Forbidden (REMOTE_PATH_FORBIDDEN), InvalidInput (REMOTE_FILE_TOO_LARGE), PortalErrors."""
        source = self.confined(remote_path)
        return self._transfer(
            "download",
            source,
            lambda: transfer.download(
                connection_pool(),
                self._spec,
                identity=self._identity,
                remote_path=source,
                local_path=local_path,
                progress=progress,
                verify_sha256=verify_sha256,
                max_bytes=max_bytes,
            ),
        )
