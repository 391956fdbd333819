"""jobs.services.finish_job against the fake member session: results copied back, SLURM's final word recorded."""

from __future__ import annotations

import pytest

from jobs import services
from jobs.models import Job, JobEvent, JobProgress, JobState
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

LOG = b"Info: NAMD 2.14 for Linux-x86_64\nTIMING: 100  CPU: 1.0, 0.01/step  Wall: 1.0, 0.01/step\n"


def finish(job: Job) -> Job:
    """The one call of the service under test (it may move; keep it here)."""
    services.finish_job(job_id=job.pk, task_id="finish-1")
    return Job.objects.get(pk=job.pk)


def ended_job(credential, fake_cluster, slurm_job_id: str, **traits) -> Job:
    """A job SLURM reported terminal whose results are still in scratch (finished_at not set)."""
    job = JobFactory(
        owner=credential.user, profile=credential.profile, slurm_job_id=slurm_job_id, finished_at=None, **traits
    )
    fake_cluster.put(f"{job.scratch_dir}/job.namd", job.config_text.encode())
    fake_cluster.put(f"{job.scratch_dir}/out.coor", b"coordinates")
    fake_cluster.put(f"{job.scratch_dir}/slurm-{slurm_job_id}.out", LOG)
    fake_cluster.put(
        f"{job.scratch_dir}/slurm-{slurm_job_id}.err", b"srun: error: vm: task 0: Exited with exit code 3\n"
    )
    return job


def test_finishing_copies_the_results_back_and_records_the_exit_code(fake_cluster, credential) -> None:
    job = ended_job(credential, fake_cluster, "44", failed=True, exit_code=None)
    fake_cluster.scheduler.knows("status_live_and_purged", "44")  # 44 exited 3
    finished = finish(job)
    assert finished.finished_at is not None
    assert (finished.state, finished.exit_code, finished.slurm_state) == (JobState.FAILED, 3, "FAILED")
    assert fake_cluster.file(f"{job.project_dir}/out.coor") == b"coordinates"
    assert fake_cluster.ran("rsync") == [("rsync", "-a", "--", f"{job.scratch_dir}/", f"{job.project_dir}/")]
    assert list(JobEvent.objects.filter(job=job).values_list("kind", flat=True)) == ["RESULTS_COPIED"]
    progress = JobProgress.objects.get(job=job)
    assert progress.stderr_tail == "srun: error: vm: task 0: Exited with exit code 3\n"
    assert "out.coor" in {entry["path"] for entry in progress.project_files}
    assert progress.log_state["offset"] == len(LOG)
    assert b'"state": "FAILED"' in fake_cluster.file(f"{job.project_dir}/job.json")


def test_a_second_finish_does_nothing(fake_cluster, credential) -> None:
    job = ended_job(credential, fake_cluster, "44", failed=True)
    fake_cluster.scheduler.knows("status_live_and_purged", "44")
    first = finish(job)
    commands = list(fake_cluster.argvs)
    again = finish(job)
    assert again.finished_at == first.finished_at
    assert fake_cluster.argvs == commands
    assert JobEvent.objects.filter(job=job, kind="RESULTS_COPIED").count() == 1


def test_a_timeout_that_asked_to_continue_gets_its_continuation(fake_cluster, credential) -> None:
    job = ended_job(credential, fake_cluster, "42", timed_out=True, continue_on_timeout=True)
    fake_cluster.scheduler.knows("status_timeout_array_het_finished", "42")
    finished = finish(job)
    assert finished.slurm_state == "TIMEOUT"
    (child,) = Job.objects.filter(parent=job)
    assert (child.state, child.submit_when_ready) == (JobState.DRAFT, True)
    assert JobEvent.objects.filter(job=job, kind="CONTINUED").count() == 1
