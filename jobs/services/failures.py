"""What a task that gave up leaves behind, so nothing waits forever for it.

A task ends for good after its last retry of a cluster that stayed unreachable, or at once on a
bug. Its job (or its inputs, or its download) then says so with a code and a sentence: the cluster's
code for an outage, INTERNAL_ERROR for a bug (whose traceback the task logged). Never a cluster call.
"""

from __future__ import annotations

from jobs.models import InputFile, Job, StagedDownload
from jobs.services.readiness import refresh_readiness
from jobs.transitions import record_task_failure
from portal.errors import PortalError


def internal_error(what_next: str) -> PortalError:
    """The error a member sees for a bug: it was logged; `what_next` says what they can do."""
    return PortalError(f"Something went wrong on our side; it has been logged. {what_next}", code="INTERNAL_ERROR")


def job_task_gave_up(*, job_id: int, kind: str, error: PortalError) -> None:
    """The job's error and a timeline event of this kind (e.g. RESTART_FAILED)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is not None:
        record_task_failure(job, kind, error)


def input_copy_gave_up(*, input_ids: list[int], error: PortalError) -> None:
    """Inputs still on their way to the cluster become FAILED with the error; the job's readiness follows."""
    waiting = InputFile.objects.filter(
        pk__in=input_ids, state__in=[InputFile.State.RECEIVED, InputFile.State.UPLOADING]
    )
    job_ids = set(waiting.values_list("job_id", flat=True))
    waiting.update(state=InputFile.State.FAILED, problem_code=error.code, problem_message=error.user_message[:500])
    for job in Job.objects.filter(pk__in=job_ids):
        refresh_readiness(job)


def download_gave_up(*, download_id: int, error: PortalError) -> None:
    """A download still being fetched becomes FAILED with the error."""
    StagedDownload.objects.filter(pk=download_id, state=StagedDownload.State.FETCHING).update(
        state=StagedDownload.State.FAILED, error_code=error.code, error_message=error.user_message[:500]
    )
