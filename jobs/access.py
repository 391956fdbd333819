"""The one permission rule for jobs: who may see or act on a job, as a queryset and as a loader.

Every view, API endpoint and task loads a job through `access_job`; `visible_jobs` is the same rule
as a queryset for lists. Members see their own jobs; lab admins see every job; inactive users none.
Soft-deleted jobs are gone for everyone here (the admin site still shows them).
"""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from jobs.models import Job, StagedDownload
from portal.errors import NotFound


def visible_jobs(user: User, *, include_deleted: bool = False) -> QuerySet[Job]:
    if not user.is_active:
        return Job.objects.none()
    jobs = Job.objects.all() if include_deleted else Job.objects.filter(deleted_at=None)
    if user.is_lab_admin:
        return jobs
    return jobs.filter(owner=user)


def access_job(*, user: User, job_id: int, for_update: bool = False, include_deleted: bool = False) -> Job:
    """The job if `user` may see and act on it. Raises NotFound (JOB_NOT_FOUND) for missing and not-yours alike.

    Only the delete task passes `include_deleted` (it works on a job the member already deleted).
    """
    queryset = visible_jobs(user, include_deleted=include_deleted).select_related(
        "owner", "profile", "parent", "template_version__template"
    )
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    job = queryset.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such job.", code="JOB_NOT_FOUND")
    return job


def access_job_for_task(*, acting_user_id: int, job_id: int, include_deleted: bool = False) -> Job:
    """`access_job` at a task's run time, as the user who asked (their rights may have changed since). Raises
    NotFound (JOB_NOT_FOUND)."""
    return access_job(user=User.objects.get(pk=acting_user_id), job_id=job_id, include_deleted=include_deleted)


def access_download(*, user: User, job_id: int, download_id: int) -> StagedDownload:
    """A staged download of a job the user may access. Raises NotFound (JOB_NOT_FOUND, DOWNLOAD_NOT_FOUND)."""
    job = access_job(user=user, job_id=job_id)
    download = job.downloads.filter(pk=download_id).first()
    if download is None:
        raise NotFound("No such download.", code="DOWNLOAD_NOT_FOUND")
    return download
