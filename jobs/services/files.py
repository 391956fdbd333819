"""A job's files on the cluster as the member sees them: the folder listing, the logs, and downloads.

Requests enqueue; tasks read as the owner and store what they read (the listing and log tails in the
job's progress row, a download in the portal's file store) for pages and the API to serve without SSH.
A downloaded path is confined to the job's project folder by `clusters.paths.resolve_user_path`
here and by the remote realpath check in the session.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from clusters.paths import resolve_user_path
from clusters.ssh import RemotePathForbidden
from jobs import file_store, remote
from jobs.access import access_job_for_task, access_job_to_act
from jobs.models import Job, JobProgress, StagedDownload
from portal.enqueue import enqueue_on_commit
from portal.errors import ClusterUnreachable, InvalidInput, PortalError

MAX_DOWNLOAD_PATH_CHARS = 400


def request_log_fetch(*, job: Job, user: User) -> str:
    """Enqueue a read of the job's log tails now ("" before it reached SLURM). Raises NotFound, Forbidden
    (JOB_NOT_YOURS: it reads as the owner)."""
    job = access_job_to_act(user=user, job_id=job.pk)
    return enqueue_on_commit("jobs.tasks.fetch_logs_task", job.pk, user.pk) if job.slurm_job_id else ""


def request_file_listing(*, user: User, job_id: int) -> str:
    job = access_job_to_act(user=user, job_id=job_id)
    return enqueue_on_commit("jobs.tasks.list_job_files_task", job.pk, user.pk)


def list_job_files(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """List the project dir into the job's progress record (the API serves it without SSH)."""
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=job_id)
    session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
    result = session.run(remote.list_dir_argv(job.project_dir))
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
    """Stage a project-dir file on the portal so it can be streamed; returns (download, task id)."""
    job = access_job_to_act(user=user, job_id=job_id)
    path = download_relpath(job, relpath)
    with transaction.atomic():
        download = StagedDownload.objects.create(job=job, relpath=path, requested_by=user)
        return download, enqueue_on_commit("jobs.tasks.fetch_download_task", download.pk, user.pk)


def fetch_download(*, download_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Copy a requested file from the project dir to the portal's store. Raises ClusterUnreachable (retry)."""
    download = StagedDownload.objects.filter(pk=download_id, state=StagedDownload.State.FETCHING).first()
    if download is None:
        return
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=download.job_id)
    local = file_store.download_path(job.uuid, download.pk, download.relpath.rsplit("/", 1)[-1])
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id).download(
            f"{job.project_dir}/{download.relpath}", str(local)
        )
    except ClusterUnreachable:
        raise
    except PortalError as exc:
        StagedDownload.objects.filter(pk=download.pk).update(
            state=StagedDownload.State.FAILED, error_code=exc.code, error_message=exc.user_message[:500]
        )
        return
    StagedDownload.objects.filter(pk=download.pk).update(
        state=StagedDownload.State.READY, size_bytes=result.size_bytes, local_path=str(local)
    )
