"""What finishing a job tells its owner (notifications.job_events through jobs.services.finish_job, the fake member
session): a single job's end once; a sweep's points and a run's steps nothing of their own, and ONE digest when the
last of them settles; a log that stopped moving once (jobs.services.progress through the same session)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from jobs import remote, services
from jobs.models import Job, JobEvent, JobState, SweepPoint
from jobs.services.progress import STALL_FACTOR, refresh_progress
from jobs.sweep_points import SweepAxis
from notifications.models import Delivery, Event, Notification, NotificationPreference
from templates_app.builtin import load_builtin_templates
from templates_app.models import Protocol
from tests.factories import JobFactory
from tests.jobs.test_pipelines_fast import queue_all
from tests.jobs.test_pipelines_fast import request as pipeline_request
from tests.jobs.test_sweeps import make_sweep

pytestmark = pytest.mark.django_db

LOG = b"Info: NAMD 2.14 for Linux-x86_64\n"


@pytest.fixture
def wants_everything(credential):
    user = credential.user
    user.email = "member@example.org"
    user.save(update_fields=["email"])
    NotificationPreference.objects.create(user=user, email_enabled=True, events=[event.value for event in Event])
    return user


def as_ended(job: Job, fake_cluster, slurm_job_id: str, state: str) -> Job:
    """The job as SLURM ended it, its results still in scratch."""
    Job.objects.filter(pk=job.pk).update(state=state, slurm_job_id=slurm_job_id, finished_at=None)
    job.refresh_from_db()
    fake_cluster.put(f"{job.scratch_dir}/slurm-{slurm_job_id}.out", LOG)
    return job


def test_a_failed_job_tells_its_owner_once_with_its_code_and_what_to_do(
    fake_cluster, credential, wants_everything, sent_tasks
) -> None:
    job = JobFactory(
        owner=credential.user, profile=credential.profile, failed=True, finished_at=None, slurm_job_id="44"
    )
    Job.objects.filter(pk=job.pk).update(error_code="NAMD_FATAL", error_message="NAMD stopped: missing parameters.")
    fake_cluster.put(f"{job.scratch_dir}/slurm-44.out", LOG)
    fake_cluster.scheduler.knows("status_live_and_purged", "44")
    services.finish_job(job_id=job.pk, task_id="finish-1")
    services.finish_job(job_id=job.pk, task_id="finish-2")  # a repeated finish tells nothing more
    (told,) = Notification.objects.filter(recipient=credential.user)
    assert told.event == Event.JOB_FAILED
    assert told.subject == f"Job failed: {job.title}"
    assert "(exit code 3)" in told.text
    assert "NAMD_FATAL: NAMD stopped: missing parameters." in told.text
    assert "Read the end of the NAMD log" in told.text
    assert told.link == f"{settings.PORTAL_BASE_URL}/jobs/{job.pk}/"
    assert told.fields["error_code"] == "NAMD_FATAL"
    assert list(Delivery.objects.filter(notification=told).values_list("channel", flat=True)) == ["email"]


def test_a_sweep_of_three_points_sends_one_digest_when_the_last_settles(
    fake_cluster, credential, wants_everything, sent_tasks
) -> None:
    sweep = make_sweep(credential, mode="list", axes=(SweepAxis("temperature", (300.0, 310.0, 320.0)),))
    jobs = [point.job for point in SweepPoint.objects.filter(sweep=sweep).select_related("job").order_by("index")]
    fake_cluster.scheduler.knows("status_live_and_purged", "44", "9", "53")
    first, second, last = (
        as_ended(jobs[0], fake_cluster, "44", JobState.FAILED),
        as_ended(jobs[1], fake_cluster, "9", JobState.FAILED),
        as_ended(jobs[2], fake_cluster, "53", JobState.COMPLETED),  # 53 is still PENDING in the recording:
    )  # SLURM's final word then changes nothing, and the job keeps the state given here
    for job in (first, second):
        services.finish_job(job_id=job.pk)
        assert Notification.objects.count() == 0  # a point tells nothing of its own, and the sweep is not over
    services.finish_job(job_id=last.pk)
    services.finish_job(job_id=last.pk)
    (digest,) = Notification.objects.all()
    assert digest.event == Event.RUN_ENDED
    assert digest.subject == f"Sweep ended: {sweep.title}"
    assert digest.text.startswith(f"The sweep “{sweep.title}” ended: 3 points, 1 completed, 2 failed.")
    assert "Point 0: FAILED" in digest.text
    assert digest.link.endswith(f"/sweeps/{sweep.pk}/")
    assert digest.fields["states"] == {"FAILED": 2, "COMPLETED": 1}


def test_a_timeout_that_continues_tells_continued_not_failed(
    fake_cluster, credential, wants_everything, sent_tasks
) -> None:
    job = JobFactory(
        owner=credential.user,
        profile=credential.profile,
        timed_out=True,
        continue_on_timeout=True,
        finished_at=None,
        slurm_job_id="42",
    )
    fake_cluster.put(f"{job.scratch_dir}/slurm-42.out", LOG)
    fake_cluster.scheduler.knows("status_timeout_array_het_finished", "42")
    services.finish_job(job_id=job.pk)
    (child,) = Job.objects.filter(parent=job)
    (told,) = Notification.objects.all()
    assert (told.event, told.fields["continued_as_job_id"]) == (Event.JOB_CONTINUED, child.pk)
    assert told.link.endswith(f"/jobs/{child.pk}/")


def test_a_pipeline_run_sends_one_digest_when_its_last_step_settles(
    fake_cluster, credential, wants_everything, sent_tasks
) -> None:
    load_builtin_templates()
    protocol = Protocol.objects.get(slug="min-equil-prod")
    run = services.create_pipeline(user=credential.user, request=pipeline_request(protocol, credential.profile_id))
    steps = queue_all(run)
    fake_cluster.scheduler.knows("status_live_and_purged", "44", "53")
    first = as_ended(steps[0], fake_cluster, "53", JobState.COMPLETED)  # 53 is PENDING in the recording: kept
    services.finish_job(job_id=first.pk)
    assert Notification.objects.count() == 0  # a step tells nothing of its own, and the run goes on
    failed = as_ended(steps[1], fake_cluster, "44", JobState.FAILED)
    Job.objects.filter(pk=failed.pk).update(error_code="NAMD_FATAL", error_message="NAMD stopped.")
    for later in steps[2:]:  # stopped by the failure, their own finishes already run
        Job.objects.filter(pk=later.pk).update(state=JobState.CANCELLED, finished_at=timezone.now())
    services.finish_job(job_id=failed.pk)
    services.finish_job(job_id=failed.pk)
    (digest,) = Notification.objects.all()
    assert (digest.event, digest.subject) == (Event.RUN_ENDED, f"Run failed: {run.title}")
    assert digest.text.startswith(f"The run “{run.title}” failed: 5 steps, 3 cancelled, 1 completed, 1 failed.")
    assert "Step 2 (equilibration): Failed\nNAMD_FATAL: NAMD stopped." in digest.text
    assert "resume it from the step that failed" in digest.text
    assert digest.link.endswith(f"/pipelines/{run.pk}/")


def test_a_stalled_log_tells_its_owner_once(fake_cluster, credential, wants_everything) -> None:
    job = JobFactory(owner=credential.user, profile=credential.profile, running=True, slurm_job_id="61")
    timing = "TIMING: 100  CPU: 1.0, 0.01/step  Wall: 1.0, 0.01/step, 0.1 hours remaining, 10.0 MB of memory in use.\n"
    fake_cluster.put(f"{job.scratch_dir}/slurm-61.out", LOG + timing.encode())
    session = remote.member_session(job, acting_user_id=None)
    start = timezone.now()
    refresh_progress(session, [job], start)
    assert Notification.objects.count() == 0
    later = start + timedelta(seconds=STALL_FACTOR * job.profile.sync_interval_s + 1)
    refresh_progress(session, [job], later)  # no new TIMING line for 5x the usual gap
    refresh_progress(session, [job], later + timedelta(seconds=60))  # still stalled: nothing more
    (told,) = Notification.objects.all()
    assert (told.event, told.subject) == (Event.JOB_STALLED, f"Job stalled: {job.title}")
    assert "no new TIMING line" in told.text
    assert JobEvent.objects.filter(job=job, kind="STALLED").count() == 1
