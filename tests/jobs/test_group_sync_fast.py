"""status_sync.sync_member_jobs against the fake member session: one status exec per group, states applied."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters import ssh as transport
from jobs.models import Job, JobEvent, JobState
from jobs.services import status_sync
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def pending(credential, slurm_job_id: str, **fields) -> Job:
    return JobFactory(
        owner=credential.user, profile=credential.profile, submitted=True, slurm_job_id=slurm_job_id, **fields
    )


def sync_group(credential) -> status_sync.SyncReport:
    return status_sync.sync_member_jobs(owner_id=credential.user_id, profile_id=credential.profile_id)


def test_one_status_exec_updates_a_whole_group(fake_cluster, credential, sent_tasks) -> None:
    jobs = {job_id: pending(credential, job_id) for job_id in ("42", "44", "53", "999999")}
    fake_cluster.scheduler.knows("status_live_and_purged")  # 42 RUNNING, 44 FAILED, 53 held
    report = sync_group(credential)
    assert (report.jobs, report.changed, report.newly_terminal) == (4, 2, 1)
    status_execs = [argvs for argvs in fake_cluster.sequences if argvs[0][0] == "squeue"]
    assert len(status_execs) == 1
    assert sorted(status_execs[0][0][-1].removeprefix("--jobs=").split(",")) == ["42", "44", "53", "999999"]
    saved = {job_id: Job.objects.get(pk=job.pk) for job_id, job in jobs.items()}
    assert (saved["42"].state, saved["42"].started_at is not None) == (JobState.RUNNING, True)
    assert (saved["44"].state, saved["44"].exit_code, saved["44"].slurm_reason) == (
        JobState.FAILED,
        3,
        "NonZeroExitCode",
    )
    assert (saved["53"].state, saved["53"].slurm_reason) == (JobState.PENDING, "JobHeldUser")
    assert (saved["999999"].state, saved["999999"].missing_since is not None) == (JobState.PENDING, True)
    assert sent_tasks == [("jobs.tasks.finish_job_task", (jobs["44"].pk,))]
    moves = JobEvent.objects.filter(job__in=jobs.values(), kind="TRANSITION").values_list("job_id", "new_state")
    assert sorted(moves) == sorted([(jobs["42"].pk, "RUNNING"), (jobs["44"].pk, "FAILED")])


def test_a_job_slurm_never_knew_is_lost_only_after_the_grace(fake_cluster, credential, sent_tasks) -> None:
    now = timezone.now()
    within = pending(credential, "999998", missing_since=now - status_sync.LOST_GRACE + timedelta(minutes=1))
    beyond = pending(credential, "999999", missing_since=now - status_sync.LOST_GRACE - timedelta(seconds=1))
    fake_cluster.scheduler.knows("status_live_and_purged")  # neither id is in it
    sync_group(credential)
    assert Job.objects.get(pk=within.pk).state == JobState.PENDING
    lost = Job.objects.get(pk=beyond.pk)
    assert (lost.state, lost.ended_at is not None) == (JobState.LOST, True)
    assert sent_tasks == [("jobs.tasks.finish_job_task", (beyond.pk,))]


def test_a_failed_status_query_changes_no_state(fake_cluster, credential, sent_tasks) -> None:
    job = pending(credential, "42")
    fake_cluster.scheduler.knows("status_live_and_purged")
    fake_cluster.fail("squeue", transport.Unreachable("connection reset"))
    report = sync_group(credential)
    saved = Job.objects.get(pk=job.pk)
    assert (report.changed, saved.state, saved.error_code) == (0, JobState.PENDING, "SYNC_UNREACHABLE")
    assert sent_tasks == []
