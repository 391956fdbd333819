"""State changes of a job: conditional updates that write their event in the same transaction.

`UPDATE job SET state = new WHERE id = ? AND state = expected` means two workers, a retried task or
a late sync can never move a job twice or backwards: the loser's update matches no row and writes
no event.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from jobs.models import Job, JobEvent, JobState
from portal.errors import PortalError


def transition(
    job: Job,
    new_state: JobState,
    *,
    source: str,
    detail: str = "",
    actor_id: int | None = None,
    expected: str | None = None,
    **fields: Any,
) -> bool:
    """Move `job` from `expected` (default: its state as loaded) to `new_state`; False if it was not there."""
    old_state = expected or job.state
    with transaction.atomic():
        changed = Job.objects.filter(pk=job.pk, state=old_state).update(
            state=new_state, updated_at=timezone.now(), **fields
        )
        if changed:
            JobEvent.objects.create(
                job_id=job.pk,
                old_state=old_state,
                new_state=new_state,
                source=source,
                detail=detail[:1000],
                actor_id=actor_id,
            )
    if changed:
        job.state = new_state
        for name, value in fields.items():
            setattr(job, name, value)
    return bool(changed)


def note(job: Job, kind: str, *, source: str, detail: str = "", actor_id: int | None = None) -> JobEvent:
    """An event that is not a state change (STALLED, CANCEL_REQUESTED, RESULTS_COPIED, ...)."""
    return JobEvent.objects.create(
        job_id=job.pk,
        kind=kind,
        old_state=job.state,
        new_state=job.state,
        source=source,
        detail=detail[:1000],
        actor_id=actor_id,
    )


def record_task_failure(job: Job, kind: str, error: PortalError) -> None:
    """A task's permanent failure on a draft: its code and sentence on the job, and in its timeline."""
    Job.objects.filter(pk=job.pk).update(error_code=error.code, error_message=error.user_message[:500])
    note(job, kind, source="task", detail=f"{error.code}: {error.user_message}")
