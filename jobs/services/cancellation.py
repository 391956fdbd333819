"""Stopping and removing jobs: cancel (at once before submission, else scancel), delete, and both in bulk.

A cancel of queued jobs reaches SLURM as one scancel per (owner, cluster); the state then follows
SLURM through the sync. A delete hides the job at once; a task cancels it and removes its folders.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import PurePosixPath

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from clusters.paths import is_inside_roots
from clusters.slurm import SlurmError
from jobs import file_store, remote
from jobs.access import access_job_for_task, access_job_to_act, actable_jobs
from jobs.models import EDITABLE_STATES, QUEUED_STATES, TERMINAL_STATES, InputFile, Job, JobState
from jobs.services.status_sync import request_group_sync
from jobs.transitions import note, transition
from portal.enqueue import enqueue_on_commit
from portal.errors import Conflict, InvalidInput, PortalError, RemoteCommandError
from portal.queues import cluster_queue

MAX_BULK_JOBS = 200
BULK_ACTIONS = ("cancel", "delete")


def _mark_cancelled(*, user: User, job_id: int) -> tuple[Job, bool]:
    """The database side of a cancel: CANCELLED at once before submission, else the request is noted.

    Returns (job, whether SLURM must be told with scancel). Raises NotFound, Conflict (JOB_ALREADY_ENDED).
    """
    with transaction.atomic():
        job = access_job_to_act(user=user, job_id=job_id, for_update=True)
        if job.state in TERMINAL_STATES:
            raise Conflict("The job has already ended.", code="JOB_ALREADY_ENDED")
        if job.state in EDITABLE_STATES:
            transition(job, JobState.CANCELLED, source="user", actor_id=user.pk, finished_at=timezone.now())
            return job, False
        Job.objects.filter(pk=job.pk).update(cancel_requested_at=timezone.now())
        note(job, "CANCEL_REQUESTED", source="user", actor_id=user.pk)
        return job, job.state != JobState.SUBMITTING  # a job being submitted is cancelled right after its sbatch


def _enqueue_scancels(jobs: list[Job], acting_user_id: int) -> list[str]:
    """One cancel task per (owner, cluster): each runs a single scancel for all of that group's jobs."""
    groups: dict[tuple[int, int], list[int]] = {}
    for job in jobs:
        groups.setdefault((job.owner_id, job.profile_id), []).append(job.pk)
    return [
        enqueue_on_commit("jobs.tasks.cancel_jobs_task", job_ids, acting_user_id, queue=cluster_queue(profile_id))
        for (_, profile_id), job_ids in groups.items()
    ]


def request_cancel(*, user: User, job_id: int) -> tuple[Job, str]:
    """Cancel: at once before submission, otherwise by scancel (the state follows SLURM). Raises Conflict."""
    job, needs_scancel = _mark_cancelled(user=user, job_id=job_id)
    return job, (_enqueue_scancels([job], user.pk)[0] if needs_scancel else "")


def cancel_in_slurm(*, job_ids: list[int], acting_user_id: int, task_id: str = "") -> None:
    """One scancel as the owner for jobs of one (owner, cluster), then an early sync so their states follow."""
    user = User.objects.get(pk=acting_user_id)
    jobs = actable_jobs(user, include_deleted=True).filter(pk__in=job_ids, state__in=QUEUED_STATES)
    queued = list(jobs.exclude(slurm_job_id="").select_related("owner", "profile").order_by("pk"))
    if not queued:
        return
    if len({(job.owner_id, job.profile_id) for job in queued}) > 1:
        raise ValueError("cancel_in_slurm takes the jobs of one owner on one cluster")
    try:
        session = remote.member_session(queued[0], acting_user_id=acting_user_id, task_id=task_id, for_group=True)
        session.slurm().cancel(*(job.slurm_job_id for job in queued))
    except SlurmError as exc:
        raise RemoteCommandError("SLURM refused to cancel the job.", code="SCANCEL_FAILED") from exc
    request_group_sync(owner_id=queued[0].owner_id, profile_id=queued[0].profile_id, countdown=2)


def request_delete(*, user: User, job_id: int) -> str:
    """Soft-delete the job now; a task cancels it if active and removes its remote dirs. Raises NotFound."""
    with transaction.atomic():
        job = access_job_to_act(user=user, job_id=job_id, for_update=True)
        Job.objects.filter(pk=job.pk).update(deleted_at=timezone.now())
        note(job, "DELETED", source="user", actor_id=user.pk)
        return enqueue_on_commit("jobs.tasks.delete_job_task", job.pk, user.pk, queue=cluster_queue(job.profile_id))


@dataclasses.dataclass(frozen=True)
class BulkRefusal:
    job_id: int
    code: str
    message: str


@dataclasses.dataclass(frozen=True)
class BulkResult:
    action: str
    done: tuple[int, ...]
    refused: tuple[BulkRefusal, ...]


def bulk_action(*, user: User, job_ids: Iterable[int], action: str) -> BulkResult:
    """Cancel or delete each job on its own: a refusal (with its code) never stops the rest; a job `user` may not
    see is refused as JOB_NOT_FOUND. The cancels reach SLURM as one scancel per (owner, cluster), not one per
    job. Raises InvalidInput (BULK_*)."""
    unique_ids = list(dict.fromkeys(job_ids))
    if action not in BULK_ACTIONS:
        raise InvalidInput("Choose to cancel or to delete the selected jobs.", code="BULK_ACTION_UNKNOWN")
    if not unique_ids:
        raise InvalidInput("Select at least one job first.", code="BULK_NOTHING_SELECTED")
    if len(unique_ids) > MAX_BULK_JOBS:
        raise InvalidInput(f"Select at most {MAX_BULK_JOBS} jobs at a time.", code="BULK_TOO_MANY_JOBS")
    done, refused, to_scancel = [], [], []
    for job_id in unique_ids:
        try:
            if action == "cancel":
                job, needs_scancel = _mark_cancelled(user=user, job_id=job_id)
                if needs_scancel:
                    to_scancel.append(job)
            else:
                request_delete(user=user, job_id=job_id)
        except PortalError as exc:
            refused.append(BulkRefusal(job_id=job_id, code=exc.code, message=exc.user_message))
        else:
            done.append(job_id)
    _enqueue_scancels(to_scancel, user.pk)
    return BulkResult(action=action, done=tuple(done), refused=tuple(refused))


def delete_job_files(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Cancel if active, then `rm -rf` the job's two dirs, each checked to lie strictly inside a root."""
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=job_id, include_deleted=True)
    file_store.remove_job_files(job.uuid)
    if job.state in QUEUED_STATES:
        cancel_in_slurm(job_ids=[job.pk], acting_user_id=acting_user_id, task_id=task_id)
    if job.state in EDITABLE_STATES and not job.inputs.filter(state=InputFile.State.UPLOADED).exists():
        return
    session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
    roots = [PurePosixPath(root) for root in session.roots]
    doomed = []
    for directory in (job.project_dir, job.scratch_dir):
        resolved = PurePosixPath(session.confined(directory))
        if resolved in roots or not is_inside_roots(roots, resolved):
            message = "A job folder is not inside your roots; nothing was removed."
            raise RemoteCommandError(message, code="PATH_FORBIDDEN")
        doomed.append(str(resolved))
    session.run(remote.remove_trees_argv(doomed), check=True, timeout_s=300)
    note(job, "FILES_REMOVED", source="task", detail=" ".join(doomed))
