"""What a submission that fails for good leaves on the job: a cluster outage is reported as one, a bug is a bug."""

from __future__ import annotations

import pytest

from jobs.models import Job, JobState
from jobs.tasks import submit_job_task
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
    (record,) = [r for r in caplog.records if r.name == "jobs.tasks"]
    assert record.exc_info[0] is KeyError
