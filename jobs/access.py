"""The one permission rule for jobs: who may see or act on a job, as a queryset and as a loader.

Every view, API endpoint and task loads a job through `access_job`; `visible_jobs` is the same rule
as a queryset for lists. Members see their own jobs; lab admins see every job; inactive users none.
Soft-deleted jobs are gone for everyone here (the admin site still shows them).
"""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from jobs.models import Job
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
