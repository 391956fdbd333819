"""The one permission rule for jobs: who may see a job, and who may act on it, as querysets and as loaders.

Seeing is reading what the portal holds (the pages, the API's GETs, logs and progress from the database).
Acting is anything that changes the job or reaches its cluster, which runs with the OWNER's credential on the
owner's account: uploads, submit, values, cancel, delete, restart/continue/next stage (the new job is the
owner's too, made from the owner's files), log and file refreshes, downloads. Members see and act on their own
jobs; lab admins see every job but act only on their own; inactive users nothing. Soft-deleted jobs are gone
for everyone here (the admin site still shows them).

A job one may not see is NotFound (JOB_NOT_FOUND, the same for missing); a job one may see but not act on is
Forbidden (JOB_NOT_YOURS). Every view and API endpoint loads a job through `access_job` or
`access_job_to_act`; every task through `access_job_for_task` (acting, as the user who asked, checked again).
"""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from jobs.models import Job, Pipeline, StagedDownload, Sweep
from portal.errors import Forbidden, NotFound


def visible_jobs(user: User, *, include_deleted: bool = False) -> QuerySet[Job]:
    """The jobs `user` may see."""
    if not user.is_active:
        return Job.objects.none()
    jobs = Job.objects.all() if include_deleted else Job.objects.filter(deleted_at=None)
    if user.is_lab_admin:
        return jobs
    return jobs.filter(owner=user)


def actable_jobs(user: User, *, include_deleted: bool = False) -> QuerySet[Job]:
    """The jobs `user` may act on: their own (a lab admin's rights end at seeing others')."""
    return visible_jobs(user, include_deleted=include_deleted).filter(owner=user)


def can_act_on(user: User, job: Job) -> bool:
    """`actable_jobs` for one job the user already sees (pages use it to offer actions)."""
    return user.is_active and job.owner_id == user.pk


def access_job(*, user: User, job_id: int, for_update: bool = False, include_deleted: bool = False) -> Job:
    """The job if `user` may see it. Raises NotFound (JOB_NOT_FOUND) for missing and not-yours alike."""
    queryset = visible_jobs(user, include_deleted=include_deleted).select_related(
        "owner", "profile", "parent", "template_version__template"
    )
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    job = queryset.filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such job.", code="JOB_NOT_FOUND")
    return job


def access_job_to_act(*, user: User, job_id: int, for_update: bool = False, include_deleted: bool = False) -> Job:
    """The job if `user` may act on it. Raises NotFound (JOB_NOT_FOUND) for a job they may not see, Forbidden
    (JOB_NOT_YOURS) for one they may only see.

    Only the delete task passes `include_deleted` (it works on a job the member already deleted).
    """
    job = access_job(user=user, job_id=job_id, for_update=for_update, include_deleted=include_deleted)
    if not can_act_on(user, job):
        raise Forbidden(
            "This job is another member's: lab admins can see it but only its owner can change it or run "
            "anything for it on the cluster. Ask its owner, or clone it to run a copy of your own.",
            code="JOB_NOT_YOURS",
        )
    return job


def access_job_for_task(*, acting_user_id: int, job_id: int, include_deleted: bool = False) -> Job:
    """`access_job_to_act` at a task's run time, as the user who asked (their rights may have changed since).
    Raises NotFound (JOB_NOT_FOUND), Forbidden (JOB_NOT_YOURS)."""
    user = User.objects.get(pk=acting_user_id)
    return access_job_to_act(user=user, job_id=job_id, include_deleted=include_deleted)


def access_download(*, user: User, job_id: int, download_id: int) -> StagedDownload:
    """A staged download of a job the user may act on (a download is the owner's files, fetched as the owner).
    Raises NotFound (JOB_NOT_FOUND, DOWNLOAD_NOT_FOUND), Forbidden (JOB_NOT_YOURS)."""
    job = access_job_to_act(user=user, job_id=job_id)
    download = job.downloads.filter(pk=download_id).first()
    if download is None:
        raise NotFound("No such download.", code="DOWNLOAD_NOT_FOUND")
    return download


def visible_pipelines(user: User) -> QuerySet[Pipeline]:
    """The pipeline runs `user` may see: the rule of `visible_jobs` (a pipeline is its steps' owner's)."""
    if not user.is_active:
        return Pipeline.objects.none()
    pipelines = Pipeline.objects.filter(deleted_at=None)
    return pipelines if user.is_lab_admin else pipelines.filter(owner=user)


def can_act_on_pipeline(user: User, pipeline: Pipeline) -> bool:
    """Whether `user` may act on a run they already see: its owner only (pages use it to offer actions)."""
    return user.is_active and pipeline.owner_id == user.pk


def access_pipeline(*, user: User, pipeline_id: int, for_update: bool = False) -> Pipeline:
    """The pipeline run if `user` may see it. Raises NotFound (PIPELINE_NOT_FOUND) for missing and not-yours."""
    queryset = visible_pipelines(user).select_related("owner", "profile", "protocol")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    pipeline = queryset.filter(pk=pipeline_id).first()
    if pipeline is None:
        raise NotFound("No such pipeline run.", code="PIPELINE_NOT_FOUND")
    return pipeline


def access_pipeline_to_act(*, user: User, pipeline_id: int, for_update: bool = False) -> Pipeline:
    """The pipeline run if `user` may act on it (its owner). Raises NotFound, Forbidden (PIPELINE_NOT_YOURS)."""
    pipeline = access_pipeline(user=user, pipeline_id=pipeline_id, for_update=for_update)
    if not can_act_on_pipeline(user, pipeline):
        raise Forbidden(
            "This pipeline run is another member's: lab admins can see it but only its owner can change it.",
            code="PIPELINE_NOT_YOURS",
        )
    return pipeline


def access_pipeline_for_task(*, acting_user_id: int, pipeline_id: int) -> Pipeline:
    """`access_pipeline_to_act` at a task's run time, as the user who asked."""
    return access_pipeline_to_act(user=User.objects.get(pk=acting_user_id), pipeline_id=pipeline_id)


def visible_sweeps(user: User) -> QuerySet[Sweep]:
    """The sweeps `user` may see, by the rule of `visible_jobs`."""
    if not user.is_active:
        return Sweep.objects.none()
    sweeps = Sweep.objects.filter(deleted_at=None)
    return sweeps if user.is_lab_admin else sweeps.filter(owner=user)


def access_sweep(*, user: User, sweep_id: int) -> Sweep:
    """The sweep if `user` may see it. Raises NotFound (SWEEP_NOT_FOUND)."""
    sweep = visible_sweeps(user).select_related("owner", "profile", "protocol", "template_version").filter(pk=sweep_id)
    found = sweep.first()
    if found is None:
        raise NotFound("No such sweep.", code="SWEEP_NOT_FOUND")
    return found


def can_act_on_sweep(user: User, sweep: Sweep) -> bool:
    """Whether `user` may act on a sweep they already see: its owner only (pages use it to offer actions)."""
    return user.is_active and sweep.owner_id == user.pk


def access_sweep_to_act(*, user: User, sweep_id: int) -> Sweep:
    """The sweep if `user` may act on it (its owner). Raises NotFound, Forbidden (SWEEP_NOT_YOURS)."""
    sweep = access_sweep(user=user, sweep_id=sweep_id)
    if not can_act_on_sweep(user, sweep):
        raise Forbidden("This sweep is another member's: only its owner can change it.", code="SWEEP_NOT_YOURS")
    return sweep
