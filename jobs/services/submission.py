"""Submitting a job: the member's request (READY -> SUBMITTING) and the task that puts it in SLURM once.

The task writes the folders, config and script, copies the inputs to scratch and runs sbatch with
the job's uuid tag as its name; a retried task first looks the tag up and adopts the id it finds,
so a job is never queued twice, and a run whose task order was taken over never runs sbatch. A
transient fault postpones the task (the job stays SUBMITTING and says until when the portal keeps
trying); a refusal, or a cluster still silent at the end, puts the job back to READY with its code.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from clusters.slurm import SbatchRejected, SlurmError
from jobs import layout, remote
from jobs.access import access_job_for_task, access_job_to_act
from jobs.models import EDITABLE_STATES, QUEUED_STATES, InputFile, Job, JobState
from jobs.services.cancellation import cancel_in_slurm
from jobs.services.readiness import input_problems, refuse_point_submit, start_pipeline_submission, start_submission
from jobs.transitions import transition
from portal.errors import ClusterUnreachable, Conflict, InvalidInput, PortalError
from portal.task_orders import ensure_still_held
from templates_app import batch_script
from templates_app.namd_config import check_config


def request_submit(*, user: User, job_id: int) -> tuple[Job, str]:
    """READY -> SUBMITTING and the submit task's id ("" when already submitted). Raises NotFound, Conflict (a
    sweep's point: SWEEP_POINT_SUBMIT, the sweep is submitted instead)."""
    with transaction.atomic():
        job = access_job_to_act(user=user, job_id=job_id, for_update=True)
        if job.state == JobState.SUBMITTING or job.state in QUEUED_STATES or job.slurm_job_id:
            return job, ""
        refuse_point_submit(job_id=job.pk, pipeline_id=job.pipeline_id)
        if job.pipeline_id is not None:  # a step goes with its run's other waiting steps, as one chain
            return job, start_pipeline_submission(job.pipeline, actor_id=user.pk, source="user")
        if job.state in (JobState.DRAFT, JobState.UPLOADING):
            problems = input_problems(job)
            raise Conflict(
                problems[0]["message"] if problems else "The inputs are still being checked.",
                code="INPUTS_NOT_READY",
                details={"problems": problems},
            )
        if job.state != JobState.READY:
            raise Conflict(f"A {job.get_state_display().lower()} job cannot be submitted.", code="JOB_NOT_SUBMITTABLE")
        remote_credential = job.owner.cluster_credentials.filter(profile=job.profile).exists()
        if not remote_credential:
            raise Conflict("Add your credential for this cluster first.", code="CREDENTIAL_NOT_FOUND")
        return job, start_submission(job, actor_id=user.pk, source="user")


def set_submit_when_ready(*, user: User, job_id: int, enabled: bool) -> tuple[Job, str]:
    """Submit the job as soon as its inputs are ready (at once if they are); returns the submit task's id or "".

    Raises NotFound, Conflict (JOB_NOT_EDITABLE, and request_submit's codes for a job already ready).
    """
    with transaction.atomic():
        job = access_job_to_act(user=user, job_id=job_id, for_update=True)
        if job.state not in EDITABLE_STATES:
            raise Conflict("The job was already submitted.", code="JOB_NOT_EDITABLE")
        Job.objects.filter(pk=job.pk).update(submit_when_ready=enabled)
        job.submit_when_ready = enabled
        if enabled and job.state == JobState.READY:
            return request_submit(user=user, job_id=job.pk)
    return job, ""


def _submission_failed(job: Job, error: PortalError) -> None:
    transition(
        job,
        JobState.READY,
        source="task",
        expected=JobState.SUBMITTING,
        detail=f"{error.code}: {error.user_message}",
        error_code=error.code,
        error_message=error.user_message[:500],
    )


def submit_job(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Dirs, config, script and inputs on the cluster, then sbatch; never twice for one job.

    A retried task (lost reply, killed worker) first looks the job up by its uuid tag and adopts the id.
    Raises ClusterUnreachable (the task retries); permanent failures put the job back to READY with the code.
    """
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=job_id)
    if job.slurm_job_id or job.state != JobState.SUBMITTING:
        return
    Job.objects.filter(pk=job.pk).update(submit_attempts=F("submit_attempts") + 1)
    attempts = Job.objects.values_list("submit_attempts", flat=True).get(pk=job.pk)
    name = batch_script.job_name(job.uuid, job.title)
    try:
        session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
        outputs = check_config(job.config_text, config_path=job.config_path, config_only=True).output_dirs
        remote.make_dirs(
            session,
            *remote.input_dirs(job, [job.config_path]),  # the project dir and the config's folder
            job.scratch_dir,
            *(f"{job.scratch_dir}/{folder}" for folder in outputs),
        )
        session.write_files(
            job.project_dir,
            {job.config_path: job.config_text.encode(), layout.SCRIPT_FILENAME: job.batch_script.encode()},
        )
        names = [*job.inputs.filter(state=InputFile.State.UPLOADED).values_list("name", flat=True), job.config_path]
        session.run(remote.copy_tree_argv(job.project_dir, job.scratch_dir), stdin=remote.file_list(names), check=True)
        client = session.slurm()
        found = client.find_by_name(name) if attempts > 1 else []
        if not found:
            ensure_still_held()  # a run whose order was taken over must not queue the job a second time
        slurm_job_id = found[-1] if found else client.submit(f"{job.project_dir}/{layout.SCRIPT_FILENAME}", name)
    except SbatchRejected as exc:
        if exc.error.is_transient:
            raise ClusterUnreachable(exc.error.message, code=exc.error.code) from exc
        _submission_failed(job, InvalidInput(exc.error.message, code=exc.error.code))
        return
    except SlurmError as exc:
        message = "SLURM did not answer as expected; the portal will retry."
        raise ClusterUnreachable(message, code="SLURM_ERROR") from exc
    except ClusterUnreachable:
        raise
    except PortalError as exc:
        _submission_failed(job, exc)
        return
    detail = f"SLURM job {slurm_job_id}" + (" (found by its tag after a retry)" if found else "")
    transition(
        job,
        JobState.PENDING,
        source="task",
        detail=detail,
        slurm_job_id=slurm_job_id,
        submitted_at=timezone.now(),
        slurm_state="PENDING",
        error_code="",  # a wait for the cluster, said while it lasted, is over
        error_message="",
    )
    remote.write_metadata(session, job)
    if Job.objects.filter(pk=job.pk, cancel_requested_at__isnull=False).exists():
        cancel_in_slurm(job_ids=[job.pk], acting_user_id=acting_user_id, task_id=task_id)


def submission_waits(*, job_id: int, error: Exception, give_up_at: datetime) -> None:
    """The cluster did not answer: the job stays SUBMITTING and says until when the portal keeps trying."""
    code = getattr(error, "code", "CLUSTER_UNREACHABLE")
    until = timezone.localtime(give_up_at).strftime("%H:%M %Z")
    message = f"The cluster did not answer; the portal keeps trying until {until}, then puts the job back to ready."
    Job.objects.filter(pk=job_id, state=JobState.SUBMITTING).update(error_code=code, error_message=message)


def submission_gave_up(*, job_id: int, error: PortalError) -> None:
    """After the last retry: back to READY with the error, so the member can submit again (safe: tag lookup)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is not None:
        _submission_failed(job, error)
