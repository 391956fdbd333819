"""After SLURM ends a job: the results copied back, the rest of the log read, the final status kept.

`finish_job` runs once per terminal job (the sync's finish order): one exec runs rsync scratch ->
project (failed jobs too), asks SLURM for the final status (the exit code, once accounting has it),
reads the log's last bytes, SLURM's stderr and the project listing; `finished_at` marks it done and, in the
same transaction, orders the job's usage accounting (`accounting.orders`: one sacct per member and cluster). A
TIMEOUT job asked to continue does so here, and a sweep's point that settled lets its sweep's gate
start the next.
`fetch_logs` is the member's "refresh the logs now".
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounting.orders import request_usage_accounting
from clusters.slurm import SlurmError, build_status_argvs, parse_status_output
from clusters.ssh import CommandResult
from jobs import remote
from jobs.access import access_job_for_task
from jobs.metadata import sweep_point_of
from jobs.models import TERMINAL_STATES, Job, JobProgress, JobState, Pipeline, Sweep
from jobs.services.pipelines import stop_after
from jobs.services.progress import MAX_LOG_BYTES_AT_FINISH, feed_log, refresh_progress
from jobs.services.restart import continue_after_timeout, will_continue
from jobs.services.status_sync import slurm_time
from jobs.services.sweeps import point_settled
from jobs.services.viewer import order_frames_after_finish
from jobs.transitions import note
from notifications import job_events
from portal.errors import RemoteCommandError


def finish_job(*, job_id: int, task_id: str = "") -> None:
    """After a terminal state: rsync scratch -> project, read the rest of the log, stderr and the listing."""
    job = (
        Job.objects.select_related("owner", "profile", "parent", "template_version__template").filter(pk=job_id).first()
    )
    if job is None or job.state not in TERMINAL_STATES or job.finished_at is not None or not job.slurm_job_id:
        return
    if job.pipeline_id is not None and job.state != JobState.COMPLETED and not will_continue(job):
        stop_after(job, task_id=task_id)  # before anything slow: the steps after it must not wait in SLURM
    progress, _ = JobProgress.objects.get_or_create(job=job)
    session = remote.member_session(job, acting_user_id=None, task_id=task_id)  # the sync's follow-up: no one asked
    offset = (progress.log_state or {}).get("offset", 0)
    squeue_argv, sacct_argv = build_status_argvs([job.slurm_job_id])
    copy, squeue, sacct, log, stderr, listing = session.run_sequence(
        [
            remote.copy_results_argv(job),
            # after the copy, so that accounting has long caught up with the job's end (its exit code)
            list(squeue_argv),
            list(sacct_argv),
            remote.read_log_argv(job, offset, MAX_LOG_BYTES_AT_FINISH),
            remote.stderr_tail_argv(job),
            remote.list_dir_argv(job.project_dir),
        ],
        timeout_s=600,
        # rsync's complaints, the rest of the log, the stderr tail and the listing, each bounded
        max_output_bytes=remote.LISTING_MAX_BYTES * 2 + MAX_LOG_BYTES_AT_FINISH + remote.LOG_TAIL_BYTES,
    )
    final_status = _final_status(job, squeue, sacct)
    now = timezone.now()
    if log.exit_code == 0:
        feed_log(progress, log.stdout, now, job.profile.sync_interval_s)
    progress.stalled_at = None
    if stderr.exit_code == 0:
        progress.stderr_tail = stderr.stdout
    if listing.exit_code == 0:
        progress.project_files = [entry.as_json() for entry in remote.parse_listing(listing.stdout)]
        progress.files_listed_at = now
    progress.logs_fetched_at = now
    progress.save()
    continues = will_continue(job)
    with transaction.atomic():  # settled and told together: the message is written with the state it tells
        _lock_run_or_sweep(job)
        if not Job.objects.filter(pk=job.pk, finished_at=None).update(finished_at=now, **final_status):
            return
        for name, value in final_status.items():
            setattr(job, name, value)
        job.finished_at = now
        job_events.job_finished(job, continues=continues)
        # SLURM's accounting of the job, with the member's other jobs on the cluster finishing now: one sacct
        request_usage_accounting(owner_id=job.owner_id, profile_id=job.profile_id)
        order_frames_after_finish(job)  # the view's frames, from the project folder once the copy is done
    if copy.exit_code == 0:
        note(job, "RESULTS_COPIED", source="task", detail=f"{job.scratch_dir} -> {job.project_dir}")
    else:
        error = RemoteCommandError("Copying the results back failed; they are still in scratch.", code="RSYNC_FAILED")
        Job.objects.filter(pk=job.pk).update(error_code=error.code, error_message=error.user_message)
        note(job, "RESULTS_COPY_FAILED", source="task", detail=f"rsync exited {copy.exit_code}: {copy.stderr[:300]}")
    remote.write_metadata(session, job)
    if job.state == JobState.TIMEOUT and job.continue_on_timeout:
        continue_after_timeout(job)
    point_settled(job)  # a sweep's point: its gate may start the next


def _lock_run_or_sweep(job: Job) -> None:
    """Lock the sweep or run the job is part of: two of its jobs settling at once take turns, so the later one
    sees the other settled (one digest when the whole is over). Taken before the job's row, as the gate does."""
    point = sweep_point_of(job)
    if point is not None:
        Sweep.objects.select_for_update().filter(pk=point.sweep_id).exists()
    elif job.pipeline_id is not None:
        Pipeline.objects.select_for_update().filter(pk=job.pipeline_id).exists()


def _final_status(job: Job, squeue: CommandResult, sacct: CommandResult) -> dict[str, object]:
    """The fields SLURM's final word sets: squeue reports a job that just ended without its exit code, sacct has it."""
    try:
        status = parse_status_output(squeue, sacct, [job.slurm_job_id]).get(job.slurm_job_id)
    except SlurmError:
        return {}
    if status is None or not status.is_terminal:
        return {}
    fields: dict[str, object] = {"slurm_state": status.state_verbatim[:64]}
    if status.exit_code is not None:
        fields["exit_code"] = status.exit_code
    if status.ended_at is not None:
        fields["ended_at"] = slurm_time(status.ended_at)
    return fields


def fetch_logs(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Refresh the log tails now (the member asked): the new NAMD log bytes and SLURM's stderr."""
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=job_id)
    if not job.slurm_job_id:
        return
    session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
    refresh_progress(session, [job], timezone.now())
    stderr = session.run(remote.stderr_tail_argv(job))
    fields: dict[str, object] = {"logs_fetched_at": timezone.now()}
    if stderr.exit_code == 0:
        fields["stderr_tail"] = stderr.stdout
    JobProgress.objects.update_or_create(job=job, defaults=fields)
