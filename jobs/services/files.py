"""A job's files on the cluster as the member sees them: the folder listing, the logs, and downloads.

Requests enqueue; tasks read as the owner and store what they read (the listing and log tails in the
job's progress row, a download in the portal's file store) for pages and the API to serve without SSH.
A downloaded path is confined to the job's project folder by `clusters.paths.resolve_user_path`
here and by the remote realpath check in the session. A download is stat'ed before anything is copied:
only a regular file up to PORTAL_DOWNLOAD_MAX_BYTES that fits the member's storage quota is fetched, and a
ready copy of the same file (same size and mtime) is shared instead of copied again.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from clusters.gateway import MemberSession, portal_error
from clusters.paths import resolve_user_path
from clusters.ssh import RemoteFileMissing, RemotePathForbidden
from jobs import file_store, remote
from jobs.access import access_job_for_task, access_job_to_act
from jobs.models import Job, JobProgress, StagedDownload
from jobs.services import storage
from portal.enqueue import enqueue_on_commit
from portal.errors import ClusterUnreachable, InvalidInput, PortalError
from portal.queues import cluster_queue

MAX_DOWNLOAD_PATH_CHARS = 400


def request_log_fetch(*, job: Job, user: User) -> str:
    """Enqueue a read of the job's log tails now ("" before it reached SLURM). Raises NotFound, Forbidden
    (JOB_NOT_YOURS: it reads as the owner)."""
    job = access_job_to_act(user=user, job_id=job.pk)
    if not job.slurm_job_id:
        return ""
    return enqueue_on_commit("jobs.tasks.fetch_logs_task", job.pk, user.pk, queue=cluster_queue(job.profile_id))


def request_file_listing(*, user: User, job_id: int) -> str:
    job = access_job_to_act(user=user, job_id=job_id)
    return enqueue_on_commit("jobs.tasks.list_job_files_task", job.pk, user.pk, queue=cluster_queue(job.profile_id))


def list_job_files(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """List the project dir into the job's progress record (the API serves it without SSH)."""
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=job_id)
    session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
    result = session.run(remote.list_dir_argv(job.project_dir), max_output_bytes=remote.LISTING_MAX_BYTES)
    entries = [entry.as_json() for entry in remote.parse_listing(result.stdout)] if result.exit_code == 0 else []
    JobProgress.objects.update_or_create(
        job=job, defaults={"project_files": entries, "files_listed_at": timezone.now()}
    )


def download_relpath(job: Job, relpath: str) -> str:
    """The member's path below the job's project dir, normalized. Raises InvalidInput (PATH_INVALID)."""
    try:
        if len(relpath) > MAX_DOWNLOAD_PATH_CHARS:
            raise RemotePathForbidden("the path is too long")
        return str(resolve_user_path([job.project_dir], relpath).relative_to(job.project_dir))
    except RemotePathForbidden as exc:
        raise InvalidInput("Give a path inside the job's folder, e.g. 'out.coor'.", code="PATH_INVALID") from exc


def request_download(*, user: User, job_id: int, relpath: str) -> tuple[StagedDownload, str]:
    """Stage a project-dir file on the portal so it can be streamed; returns (download, task id).

    A download of the same file still being fetched is returned as it is (task id "")."""
    job = access_job_to_act(user=user, job_id=job_id)
    path = download_relpath(job, relpath)
    with transaction.atomic():
        fetching = StagedDownload.objects.filter(job=job, relpath=path, state=StagedDownload.State.FETCHING).first()
        if fetching is not None:
            return fetching, ""
        download = StagedDownload.objects.create(job=job, relpath=path, requested_by=user)
        return download, enqueue_on_commit(
            "jobs.tasks.fetch_download_task", download.pk, user.pk, queue=cluster_queue(job.profile_id)
        )


def _too_large(max_bytes: int) -> InvalidInput:
    return InvalidInput(
        f"That file is larger than the {max_bytes} bytes the portal copies for download; "
        "fetch it from the cluster directly (scp, rsync).",
        code="DOWNLOAD_TOO_LARGE",
        details={"max_bytes": max_bytes},
    )


def _stat_download(session: MemberSession, path: str) -> remote.RemoteFileFacts:
    """Size, mtime and type of the file to download. Raises NotFound (REMOTE_FILE_MISSING), InvalidInput
    (DOWNLOAD_NOT_A_FILE, DOWNLOAD_TOO_LARGE), Forbidden (REMOTE_PATH_FORBIDDEN), PortalErrors."""
    result = session.run(remote.file_facts_argv(session.confined(path)))
    facts = remote.parse_file_facts(result.stdout) if result.exit_code == 0 else None
    if facts is None:
        missing = RemoteFileMissing(f"remote 'stat' exited with status {result.exit_code}", result=result)
        raise portal_error(missing) from missing
    if not facts.is_regular:
        raise InvalidInput("Only a file can be downloaded, not a folder or a device.", code="DOWNLOAD_NOT_A_FILE")
    if facts.size_bytes > settings.DOWNLOAD_MAX_BYTES:
        raise _too_large(settings.DOWNLOAD_MAX_BYTES)
    return facts


def _reserve(download: StagedDownload, owner_id: int, facts: remote.RemoteFileFacts) -> StagedDownload | None:
    """A ready copy of the same file to share, else the file's size reserved on this download.

    Raises StorageQuotaExceeded (STORAGE_QUOTA_EXCEEDED)."""
    with transaction.atomic():
        storage.lock_owner(owner_id)
        same = (
            StagedDownload.objects.filter(
                job_id=download.job_id,
                relpath=download.relpath,
                state=StagedDownload.State.READY,
                size_bytes=facts.size_bytes,
                remote_modified=facts.modified,
            )
            .exclude(local_path="")
            .first()
        )
        if same is not None and Path(same.local_path).is_file():
            return same
        storage.check_room(owner_id, facts.size_bytes, except_download_id=download.pk)
        StagedDownload.objects.filter(pk=download.pk).update(size_bytes=facts.size_bytes)
    return None


def fetch_download(*, download_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Copy a requested file from the project dir to the portal's store, or share a ready copy of it.

    Refusals (DOWNLOAD_TOO_LARGE, DOWNLOAD_NOT_A_FILE, STORAGE_QUOTA_EXCEEDED, REMOTE_FILE_MISSING, ...) leave
    the download FAILED with the code, nothing staged. Raises ClusterUnreachable (retry).
    """
    download = StagedDownload.objects.filter(pk=download_id, state=StagedDownload.State.FETCHING).first()
    if download is None:
        return
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=download.job_id)
    local = file_store.download_path(job.uuid, download.pk, download.relpath.rsplit("/", 1)[-1])
    path = f"{job.project_dir}/{download.relpath}"
    try:
        session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
        facts = _stat_download(session, path)
        same = _reserve(download, job.owner_id, facts)
        if same is None:
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                result = session.download(path, str(local), max_bytes=settings.DOWNLOAD_MAX_BYTES)
            except InvalidInput as exc:
                if exc.code != "REMOTE_FILE_TOO_LARGE":
                    raise
                raise _too_large(settings.DOWNLOAD_MAX_BYTES) from exc  # it grew past the cap since the stat
    except ClusterUnreachable:
        raise
    except PortalError as exc:
        file_store.remove_download(str(local))
        StagedDownload.objects.filter(pk=download.pk).update(
            state=StagedDownload.State.FAILED, size_bytes=0, error_code=exc.code, error_message=exc.user_message[:500]
        )
        return
    if same is not None:
        fields = {"size_bytes": same.size_bytes, "local_path": same.local_path}
    else:
        fields = {"size_bytes": result.size_bytes, "local_path": str(local)}
    StagedDownload.objects.filter(pk=download.pk).update(
        state=StagedDownload.State.READY, remote_modified=facts.modified, **fields
    )
