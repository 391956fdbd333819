"""What a submission that fails for good leaves on the job: a cluster outage is reported as one, a bug is a bug."""

from __future__ import annotations

import pytest

from jobs.models import InputFile, Job, JobState, StagedDownload
from jobs.tasks import (
    copy_input_batch_task,
    copy_input_file_task,
    fetch_download_task,
    prepare_restart_task,
    submit_job_task,
)
from portal.errors import ClusterUnreachable
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def submitting(member):
    return JobFactory(owner=member, submitting=True)


def test_a_cluster_that_stayed_unreachable_is_reported_as_such(submitting) -> None:
    submit_job_task.on_failure(ClusterUnreachable(), "t1", (submitting.pk, submitting.owner_id), {}, None)
    job = Job.objects.get(pk=submitting.pk)
    assert (job.state, job.error_code) == (JobState.READY, ClusterUnreachable.code)


def test_a_bug_is_logged_with_its_traceback_and_recorded_as_an_internal_error(submitting, caplog) -> None:
    try:
        raise KeyError("profile")
    except KeyError as bug:
        submit_job_task.on_failure(bug, "t2", (submitting.pk, submitting.owner_id), {}, None)
    job = Job.objects.get(pk=submitting.pk)
    assert (job.state, job.error_code) == (JobState.READY, "INTERNAL_ERROR")
    assert "Submit again" in job.error_message
    (record,) = [r for r in caplog.records if r.name == "portal.durable"]
    assert record.exc_info[0] is KeyError


# ------------------------------------------------------------------ every task that gives up says so


def bug() -> KeyError:
    try:
        raise KeyError("a bug")
    except KeyError as exc:
        return exc


def test_an_input_copy_that_gives_up_fails_its_input_and_the_job_says_what_is_missing(member, settings, tmp_path):
    settings.PORTAL_FILE_STORE = str(tmp_path)
    job = JobFactory(owner=member)
    input_file = InputFile.objects.create(
        job=job,
        name="water.psf",
        role="structure",
        size_bytes=3,
        sha256="x",
        state=InputFile.State.UPLOADING,
        staged_path=str(tmp_path / "w"),
    )
    copy_input_file_task.on_failure(bug(), "t3", (input_file.pk, member.pk), {}, None)
    input_file.refresh_from_db()
    assert (input_file.state, input_file.problem_code) == (InputFile.State.FAILED, "INTERNAL_ERROR")
    assert "Upload the file again" in input_file.problem_message


def test_a_batch_copy_that_stayed_unreachable_fails_only_the_inputs_still_waiting(member):
    job = JobFactory(owner=member)
    waiting, copied = (
        InputFile.objects.create(job=job, name=name, size_bytes=3, sha256="x", state=state)
        for name, state in (("a.prm", InputFile.State.RECEIVED), ("b.prm", InputFile.State.UPLOADED))
    )
    copy_input_batch_task.on_failure(ClusterUnreachable(), "t4", (job.pk, [waiting.pk, copied.pk], member.pk), {}, None)
    states = dict(InputFile.objects.filter(job=job).values_list("name", "state"))
    assert states == {"a.prm": InputFile.State.FAILED, "b.prm": InputFile.State.UPLOADED}


def test_a_restart_that_gives_up_leaves_its_code_and_an_event_on_the_draft(member):
    job = JobFactory(owner=member)
    prepare_restart_task.on_failure(ClusterUnreachable(), "t5", (job.pk, member.pk), {}, None)
    job.refresh_from_db()
    assert (job.state, job.error_code) == (JobState.DRAFT, ClusterUnreachable.code)
    assert job.events.filter(kind="RESTART_FAILED").count() == 1


def test_a_download_that_hits_a_bug_is_failed_not_left_fetching(member):
    job = JobFactory(owner=member)
    download = StagedDownload.objects.create(job=job, relpath="out.coor", requested_by=member)
    fetch_download_task.on_failure(bug(), "t6", (download.pk, member.pk), {}, None)
    download.refresh_from_db()
    assert (download.state, download.error_code) == (StagedDownload.State.FAILED, "INTERNAL_ERROR")
