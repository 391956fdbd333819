"""A worker killed at any line of a submission or a finish: beat's sweep sends the order again, and the job
ends exactly as if nothing had happened (queued once, results copied once, nothing stuck).

The kill is `WorkerKilled` (a BaseException, like a SIGKILL nothing below catches) raised by the fake
member session before or after each of its commands took effect; every command of the task is tried.
The real-process version (a SIGKILLed Celery worker on the local cluster) is in tests/integration.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounting.orders import RECORD_USAGE_TASK
from jobs.models import Job, JobEvent, JobState
from jobs.services.readiness import start_submission
from jobs.services.status_sync import order_finish
from jobs.tasks import finish_job_task, submit_job_task
from portal import task_orders
from portal.models import TaskOrder
from tests.factories import JobFactory
from tests.fake_cluster import WorkerKilled

pytestmark = pytest.mark.django_db

TAGGED_UUID = uuid.UUID("3f2a9c1e-7b4d-4e8a-9c0f-1d2e3f4a5b6c")  # its sbatch and find-by-name were recorded
SUBMISSION_COMMANDS = 8  # mkdir, write (2 realpaths, tar), copy to scratch, sbatch, metadata (realpath, tar)
FINISH_COMMANDS = 8  # the final status (squeue, sacct), rsync, log, stderr, listing, metadata (realpath, tar)


def run_order(task, order: TaskOrder) -> bool:
    """One delivery of the order to a worker; False when the worker died during it."""
    try:
        task.apply(args=order.args, task_id=order.task_id)
    except WorkerKilled:
        return False
    return True


def sweep_after_the_lease(sent_tasks) -> TaskOrder:
    """Time passes beyond the dead run's lease; beat's sweep sends its order again. (A finish that set
    `finished_at` before it died also placed the usage accounting's order: a new one, not yet due.)"""
    TaskOrder.objects.filter(state=TaskOrder.State.RUNNING).update(lease_until=timezone.now() - timedelta(seconds=1))
    sent_tasks.clear()
    assert task_orders.dispatch_due_orders() == 1
    (order,) = TaskOrder.objects.filter(done_at=None).exclude(task_name=RECORD_USAGE_TASK)
    assert sent_tasks == [(order.task_name, tuple(order.args))]
    return order


@pytest.mark.parametrize("after_running", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("line", range(SUBMISSION_COMMANDS))
def test_a_submission_killed_at_any_line_is_queued_exactly_once(
    fake_cluster, credential, sent_tasks, line, after_running
) -> None:
    job = JobFactory(owner=credential.user, profile=credential.profile, ready=True, uuid=TAGGED_UUID)
    start_submission(job, actor_id=job.owner_id, source="user")
    fake_cluster.scheduler.answer_sbatch("sbatch_ok_tagged.txt")  # 173, consumed only when sbatch really runs
    fake_cluster.kill_worker_at(line, after_running=after_running)

    (order,) = TaskOrder.objects.all()
    assert run_order(submit_job_task, order) is False
    assert TaskOrder.objects.get(pk=order.pk).done_at is None  # the dead run left its order open
    assert run_order(submit_job_task, order) is True  # a late duplicate delivery while the lease holds
    assert TaskOrder.objects.get(pk=order.pk).state == TaskOrder.State.RUNNING  # ... did nothing

    assert run_order(submit_job_task, sweep_after_the_lease(sent_tasks)) is True
    submitted = Job.objects.get(pk=job.pk)
    assert (submitted.state, submitted.slurm_job_id) == (JobState.PENDING, "173")
    assert fake_cluster.scheduler.accepted == ["173"]
    assert JobEvent.objects.filter(job=job, new_state=JobState.PENDING).count() == 1
    order.refresh_from_db()
    assert (order.state, order.runs, order.interruptions) == (TaskOrder.State.DONE, 2, 1)


def test_the_submission_takes_the_commands_the_kill_points_cover(fake_cluster, credential, sent_tasks) -> None:
    job = JobFactory(owner=credential.user, profile=credential.profile, ready=True, uuid=TAGGED_UUID)
    start_submission(job, actor_id=job.owner_id, source="user")
    fake_cluster.scheduler.answer_sbatch("sbatch_ok_tagged.txt")
    (order,) = TaskOrder.objects.all()
    assert run_order(submit_job_task, order) is True
    assert len(fake_cluster.argvs) == SUBMISSION_COMMANDS


def ended_job(credential, fake_cluster) -> Job:
    job = JobFactory(
        owner=credential.user, profile=credential.profile, slurm_job_id="44", failed=True, finished_at=None
    )
    fake_cluster.put(f"{job.scratch_dir}/out.coor", b"coordinates")
    fake_cluster.put(f"{job.scratch_dir}/slurm-44.out", b"Info: NAMD 2.14\n")
    fake_cluster.put(f"{job.scratch_dir}/slurm-44.err", b"")
    fake_cluster.scheduler.knows("status_live_and_purged", "44")
    return job


@pytest.mark.parametrize("after_running", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("line", range(FINISH_COMMANDS))
def test_a_finish_killed_at_any_line_copies_the_results_once_and_settles(
    fake_cluster, credential, sent_tasks, line, after_running
) -> None:
    job = ended_job(credential, fake_cluster)
    order_finish(job.pk, profile_id=job.profile_id)
    fake_cluster.kill_worker_at(line, after_running=after_running)
    (order,) = TaskOrder.objects.all()
    assert run_order(finish_job_task, order) is False
    assert (
        order_finish(job.pk, profile_id=job.profile_id) == order.task_id
    )  # the sync asking again gets the open order, not a second one

    assert run_order(finish_job_task, sweep_after_the_lease(sent_tasks)) is True
    finished = Job.objects.get(pk=job.pk)
    assert finished.finished_at is not None
    assert finished.is_settled
    assert fake_cluster.file(f"{job.project_dir}/out.coor") == b"coordinates"
    assert JobEvent.objects.filter(job=job, kind="RESULTS_COPIED").count() == 1
    assert TaskOrder.objects.get(pk=order.pk).state == TaskOrder.State.DONE
    assert TaskOrder.objects.filter(task_name=RECORD_USAGE_TASK).count() == 1  # its accounting ordered once


def test_the_finish_takes_the_commands_the_kill_points_cover(fake_cluster, credential, sent_tasks) -> None:
    job = ended_job(credential, fake_cluster)
    order_finish(job.pk, profile_id=job.profile_id)
    (order,) = TaskOrder.objects.all()
    assert run_order(finish_job_task, order) is True
    assert len(fake_cluster.argvs) == FINISH_COMMANDS
