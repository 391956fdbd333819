"""jobs.services.submit_job against the fake member session: what is written, one sbatch, adoption, refusals."""

from __future__ import annotations

import uuid

import pytest

from clusters import ssh as transport
from jobs import services
from jobs.models import Job, JobEvent, JobState
from portal.errors import ClusterUnreachable
from tests.factories import JobFactory
from tests.fake_cluster import SLURM_FIXTURES

pytestmark = pytest.mark.django_db

# The job whose tag was recorded on the local cluster (sbatch_ok_tagged.txt, find_by_name_tagged_squeue.txt).
TAGGED_UUID = uuid.UUID("3f2a9c1e-7b4d-4e8a-9c0f-1d2e3f4a5b6c")
TAGGED_NAME = "np-3f2a9c1e7b4d-water-box"


def submit(job: Job) -> Job:
    services.submit_job(job_id=job.pk, acting_user_id=job.owner_id, task_id="task-1")
    return Job.objects.get(pk=job.pk)


def transitions(job: Job) -> list[tuple[str, str, str]]:
    return list(JobEvent.objects.filter(job=job, kind="TRANSITION").values_list("old_state", "new_state", "detail"))


def test_a_first_submission_writes_the_files_copies_them_to_scratch_and_queues_once(fake_cluster, credential):
    job = JobFactory(owner=credential.user, profile=credential.profile, submitting=True)
    fake_cluster.scheduler.answer_sbatch("sbatch_ok_run1.txt")  # 54
    submitted = submit(job)
    assert (submitted.state, submitted.slurm_job_id, submitted.submit_attempts) == (JobState.PENDING, "54", 1)
    assert submitted.submitted_at is not None
    assert transitions(job) == [("SUBMITTING", "PENDING", "SLURM job 54")]
    assert fake_cluster.file(f"{job.project_dir}/job.namd") == job.config_text.encode()
    assert fake_cluster.file(f"{job.project_dir}/job.sbatch") == job.batch_script.encode()
    assert fake_cluster.file(f"{job.scratch_dir}/job.namd") == job.config_text.encode()
    assert fake_cluster.ran("sbatch") == [
        ("sbatch", "--parsable", f"--job-name=np-{job.uuid.hex[:12]}-water-box", "--", f"{job.project_dir}/job.sbatch")
    ]
    assert fake_cluster.ran("squeue") == []  # a first try looks nothing up
    assert b'"slurm_job_id": "54"' in fake_cluster.file(f"{job.project_dir}/job.json")
    assert fake_cluster.task_ids == ["task-1"]


@pytest.mark.parametrize("state", [JobState.PENDING, JobState.SUBMITTING])
def test_a_retried_submission_after_the_id_was_recorded_runs_nothing(fake_cluster, credential, state) -> None:
    job = JobFactory(owner=credential.user, profile=credential.profile, submitted=True, slurm_job_id="54", state=state)
    again = submit(job)
    assert (again.state, again.slurm_job_id, again.submit_attempts) == (state, "54", 1)
    assert fake_cluster.argvs == []
    assert transitions(job) == []


def test_a_retry_adopts_the_job_a_lost_reply_had_queued(fake_cluster, credential) -> None:
    job = JobFactory(owner=credential.user, profile=credential.profile, submitting=True, uuid=TAGGED_UUID)
    fake_cluster.scheduler.answer_sbatch("sbatch_ok_tagged.txt")  # 173, queued as TAGGED_NAME
    fake_cluster.fail("sbatch", transport.Unreachable("connection reset"), after_running=True)
    with pytest.raises(ClusterUnreachable):
        submit(job)
    lost = Job.objects.get(pk=job.pk)
    assert (lost.state, lost.slurm_job_id, lost.submit_attempts) == (JobState.SUBMITTING, "", 1)
    adopted = submit(job)
    assert (adopted.state, adopted.slurm_job_id, adopted.submit_attempts) == (JobState.PENDING, "173", 2)
    assert len(fake_cluster.ran("sbatch")) == 1
    lookup = [argvs for argvs in fake_cluster.sequences if argvs[0][0] == "squeue"]
    assert [argv[4] for argvs in lookup for argv in argvs if argv[0] == "squeue"] == [f"--name={TAGGED_NAME}"]
    assert transitions(job) == [("SUBMITTING", "PENDING", "SLURM job 173 (found by its tag after a retry)")]


def test_a_retry_whose_tag_is_not_found_submits(fake_cluster, credential) -> None:
    job = JobFactory(owner=credential.user, profile=credential.profile, submitting=True, uuid=TAGGED_UUID)
    fake_cluster.fail("sbatch", transport.Unreachable("connection reset"))  # before sbatch ran: nothing queued
    with pytest.raises(ClusterUnreachable):
        submit(job)
    fake_cluster.scheduler.answer_sbatch("sbatch_ok_tagged.txt")
    submitted = submit(job)
    assert (submitted.state, submitted.slurm_job_id) == (JobState.PENDING, "173")
    assert len(fake_cluster.ran("sacct")) == 1  # the lookup ran, found nothing
    assert len(fake_cluster.ran("sbatch")) == 2  # the one that failed, the one that queued
    assert transitions(job) == [("SUBMITTING", "PENDING", "SLURM job 173")]


REFUSAL_CODES = {
    "sbatch_err_gres.txt": "GRES",
    "sbatch_err_invalid_option.txt": "INVALID_OPTION",
    "sbatch_err_invalid_partition.txt": "INVALID_PARTITION",
    "sbatch_err_mem.txt": "NODE_CONFIG_UNAVAILABLE",
    "sbatch_err_missing_script.txt": "SCRIPT_NOT_FOUND",
    "sbatch_err_time_format.txt": "TIME_LIMIT",
}


def test_every_recorded_refusal_has_its_expected_code() -> None:
    assert sorted(path.name for path in SLURM_FIXTURES.glob("sbatch_err_*.txt")) == sorted(REFUSAL_CODES)


@pytest.mark.parametrize(("recorded", "code"), sorted(REFUSAL_CODES.items()))
def test_a_refused_sbatch_puts_the_job_back_to_ready_with_its_code(fake_cluster, credential, recorded, code) -> None:
    job = JobFactory(owner=credential.user, profile=credential.profile, submitting=True)
    fake_cluster.scheduler.answer_sbatch(recorded)
    refused = submit(job)
    assert (refused.state, refused.slurm_job_id, refused.error_code) == (JobState.READY, "", code)
    (event,) = transitions(job)
    assert event[:2] == ("SUBMITTING", "READY")
    assert event[2].startswith(f"{code}: ")
    assert len(fake_cluster.ran("sbatch")) == 1
