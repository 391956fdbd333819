"""Celery entry points for jobs: each takes ids, calls one service, returns. Idempotent under redelivery.

Every task here is a `portal.durable.DurableTask`: it runs only while it holds its task order, a
cluster that does not answer postpones it (backoff, until its patience runs out), a killed worker's
order is sent again by beat. A task that still fails for good leaves that on what it worked on
(`JobTask`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task

from jobs import services
from portal.durable import DurableTask
from portal.errors import PortalError

LONG = timedelta(hours=24)  # results and deletions are worth waiting a day for
SHORT = timedelta(minutes=10)  # what a member asked to see now is not worth waiting long for


class JobTask(DurableTask):
    """A task whose failure for good must show on what it worked on (never left waiting for it).

    The cluster's error keeps its code; any other exception is a bug, logged with its traceback and
    recorded as INTERNAL_ERROR (never dressed up as a cluster outage).
    """

    failure_kind = "TASK_FAILED"  # the timeline event of the job
    what_next = "Try again."

    def give_up(self, args: tuple[Any, ...], exc: Exception) -> None:
        super().give_up(args, exc)
        error = exc if isinstance(exc, PortalError) else services.internal_error(self.what_next)
        self.gave_up(*args, error=error)

    def gave_up(self, job_id: int, *args: object, error: PortalError) -> None:
        services.job_task_gave_up(job_id=job_id, kind=self.failure_kind, error=error)


class SubmitTask(JobTask):
    what_next = "Submit again."

    def gave_up(self, job_id: int, *args: object, error: PortalError) -> None:
        services.submission_gave_up(job_id=job_id, error=error)

    def waiting(self, args: tuple[Any, ...], *, error: Exception, give_up_at: datetime) -> None:
        services.submission_waits(job_id=args[0], error=error, give_up_at=give_up_at)


class PipelineSubmitTask(JobTask):
    what_next = "Submit the run again."

    def gave_up(self, pipeline_id: int, *args: object, error: PortalError) -> None:
        services.pipeline_submission_gave_up(pipeline_id=pipeline_id, error=error)

    def waiting(self, args: tuple[Any, ...], *, error: Exception, give_up_at: datetime) -> None:
        services.pipeline_submission_waits(pipeline_id=args[0], error=error, give_up_at=give_up_at)


class SweepTurnTask(JobTask):
    what_next = "Submit the sweep again."

    def gave_up(self, sweep_id: int, *args: object, error: PortalError) -> None:
        services.sweep_turn_gave_up(sweep_id=sweep_id, error=error)


class InputCopyTask(JobTask):
    what_next = "Upload the file again."

    def gave_up(self, input_id: int, *args: object, error: PortalError) -> None:
        services.input_copy_gave_up(input_ids=[input_id], error=error)


class InputBatchCopyTask(InputCopyTask):
    def gave_up(self, job_id: int, input_ids: list[int], *args: object, error: PortalError) -> None:
        services.input_copy_gave_up(input_ids=input_ids, error=error)


class DownloadTask(JobTask):
    what_next = "Ask for the file again."
    patience = timedelta(minutes=30)

    def gave_up(self, download_id: int, *args: object, error: PortalError) -> None:
        services.download_gave_up(download_id=download_id, error=error)


class ViewTask(JobTask):
    """The 3D view's preparation: a failure for good shows on the view, not on the job's timeline."""

    def gave_up(self, job_id: int, *args: object, error: PortalError) -> None:
        services.view_gave_up(job_id=job_id, error=error)


@shared_task(base=SubmitTask, time_limit=900, soft_time_limit=840, bind=True)
def submit_job_task(self: Task, job_id: int, acting_user_id: int) -> None:
    services.submit_job(job_id=job_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=PipelineSubmitTask, time_limit=900, soft_time_limit=840, bind=True)
def submit_pipeline_task(self: Task, pipeline_id: int, acting_user_id: int) -> None:
    services.submit_pipeline(pipeline_id=pipeline_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=DurableTask, time_limit=120, soft_time_limit=100, bind=True)
def cancel_pipeline_task(self: Task, pipeline_id: int, acting_user_id: int) -> None:
    services.cancel_pipeline_steps(
        pipeline_id=pipeline_id, acting_user_id=acting_user_id, task_id=self.request.id or ""
    )


@shared_task(base=SweepTurnTask, time_limit=3600, soft_time_limit=3540, bind=True)
def advance_sweep_task(self: Task, sweep_id: int) -> None:
    services.advance_sweep(sweep_id=sweep_id, task_id=self.request.id or "")


@shared_task(base=InputCopyTask, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60, bind=True)
def copy_input_file_task(self: Task, input_id: int, acting_user_id: int) -> None:
    services.copy_input_file(input_id=input_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=InputBatchCopyTask, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60, bind=True)
def copy_input_batch_task(self: Task, job_id: int, input_ids: list[int], acting_user_id: int) -> None:
    services.copy_input_batch(
        job_id=job_id, input_ids=input_ids, acting_user_id=acting_user_id, task_id=self.request.id or ""
    )


@shared_task(
    base=JobTask,
    failure_kind="ARCHIVE_FAILED",
    what_next="Send the archive again.",
    bind=True,
    time_limit=3600,
    soft_time_limit=3540,
)
def unpack_input_archive_task(self: Task, job_id: int, archive_path: str, kind: str, acting_user_id: int) -> int:
    return services.unpack_input_archive(
        job_id=job_id, archive_path=archive_path, kind=kind, acting_user_id=acting_user_id
    )


@shared_task(base=JobTask, failure_kind="STAGE_COPY_FAILED", time_limit=3600, soft_time_limit=3540, bind=True)
def copy_previous_stage_task(self: Task, job_id: int, acting_user_id: int) -> None:
    services.copy_previous_stage(job_id=job_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=JobTask, failure_kind="RESTART_FAILED", time_limit=300, soft_time_limit=280, bind=True)
def prepare_restart_task(self: Task, job_id: int, acting_user_id: int) -> None:
    services.prepare_restart(job_id=job_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=DurableTask, time_limit=120, soft_time_limit=100, bind=True)
def cancel_jobs_task(self: Task, job_ids: list[int], acting_user_id: int) -> None:
    services.cancel_in_slurm(job_ids=job_ids, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=DurableTask, patience=LONG, time_limit=900, soft_time_limit=840, bind=True)
def delete_job_task(self: Task, job_id: int, acting_user_id: int) -> None:
    services.delete_job_files(job_id=job_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=DurableTask, patience=SHORT, time_limit=120, soft_time_limit=100, bind=True)
def list_job_files_task(self: Task, job_id: int, acting_user_id: int) -> None:
    services.list_job_files(job_id=job_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=DownloadTask, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60, bind=True)
def fetch_download_task(self: Task, download_id: int, acting_user_id: int) -> None:
    services.fetch_download(download_id=download_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=ViewTask, patience=SHORT, time_limit=1800, soft_time_limit=1780, bind=True)
def prepare_view_task(self: Task, job_id: int, acting_user_id: int) -> None:
    services.prepare_view(job_id=job_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=DurableTask, patience=LONG, time_limit=1800, soft_time_limit=1780, bind=True)
def read_view_frames_task(self: Task, job_id: int) -> None:
    services.read_view_frames(job_id=job_id, task_id=self.request.id or "")


@shared_task(base=DurableTask, patience=SHORT, time_limit=900, soft_time_limit=840, bind=True)
def discover_jobs_task(self: Task, user_id: int, profile_id: int) -> dict[str, Any]:
    return services.discover_jobs(user_id=user_id, profile_id=profile_id, task_id=self.request.id or "")


@shared_task(base=DurableTask, patience=SHORT, time_limit=120, soft_time_limit=100, bind=True)
def fetch_logs_task(self: Task, job_id: int, acting_user_id: int) -> None:
    services.fetch_logs(job_id=job_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=DurableTask, patience=timedelta(0), bind=True, time_limit=300, soft_time_limit=280)
def sync_member_jobs_task(self: Task, owner_id: int, profile_id: int) -> None:
    services.sync_member_jobs(owner_id=owner_id, profile_id=profile_id, task_id=self.request.id or "")


@shared_task(
    base=JobTask, failure_kind="FINISH_FAILED", patience=LONG, time_limit=1800, soft_time_limit=1780, bind=True
)
def finish_job_task(self: Task, job_id: int) -> None:
    services.finish_job(job_id=job_id, task_id=self.request.id or "")


@shared_task(time_limit=60, soft_time_limit=50, ignore_result=True)
def request_due_syncs_task() -> int:
    return services.request_due_syncs()


@shared_task(acks_late=True, time_limit=600, soft_time_limit=580, ignore_result=True)
def expire_staged_files_task() -> dict[str, int]:
    return services.expire_staged_files()
