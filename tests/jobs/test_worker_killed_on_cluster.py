"""A real Celery worker SIGKILLed (with its pool children) while it submits jobs to the local SLURM cluster.

Its task orders stay open; once their lease is out, the sweep sends them again and a new worker takes them:
every job reaches SLURM exactly once (one SLURM job carries its tag) and settles. The lease's 45 s are not
waited for: the test moves the leases into the past, the one liberty it takes with time (bench.faults runs
the same with real time, beat and all).
"""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from portal import task_orders
from portal.celery import app as celery_app
from portal.models import TaskOrder
from templates_app import batch_script
from tests.conftest import celery_process
from tests.jobs.cluster_jobs import (
    CELL,
    QUICK,
    WATER,
    create_job,
    register,
    upload_inputs,
    wait_for,
    wait_for_state,
    wait_until_finished,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_killed"
JOBS = 4


def prefork_worker(queue: str, tmp_path, file_store, name: str):
    arguments = ["worker", "--queues", queue, "--pool", "prefork", "--concurrency", "1", "--hostname", f"{name}@%h"]
    return celery_process(arguments, queue=queue, log_path=tmp_path / f"{name}.log", file_store=file_store)


def test_a_worker_killed_during_submissions_loses_nothing_and_queues_nothing_twice(
    tmp_path, portal_file_store, monkeypatch
) -> None:
    setup = register((MEMBER,))
    queue = f"test-killed-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    client = setup.client(setup.members[0])
    values = {**WATER, **QUICK, **CELL, "run_steps": 100, "output_name": "eq"}

    with prefork_worker(queue, tmp_path, portal_file_store, "doomed") as doomed:
        job_ids = [create_job(client, setup.profile, values=values)["id"] for _ in range(JOBS)]
        for job_id in job_ids:
            upload_inputs(client, job_id)
        wait_for(lambda: Job.objects.filter(pk__in=job_ids, state="READY").count() == JOBS, timeout_s=90, what="READY")
        for job_id in job_ids:
            assert client.post(f"/api/v1/jobs/{job_id}/submit").status_code == 202
        wait_for(
            lambda: TaskOrder.objects.filter(task_name="jobs.tasks.submit_job_task", state="RUNNING").exists(),
            timeout_s=30,
            what="a submission to start",
            every_s=0.02,
        )
        time.sleep(random.uniform(0, 0.1))  # somewhere in the middle of the first; the others wait behind it
        os.killpg(doomed.pid, signal.SIGKILL)  # the worker and its pool children, at once
        doomed.wait(timeout=10)

    in_flight = TaskOrder.objects.filter(done_at=None, task_name="jobs.tasks.submit_job_task")
    assert in_flight.exists()  # the kill left work undone
    in_flight.update(lease_until=timezone.now() - timedelta(seconds=1))  # the lease runs out
    assert task_orders.dispatch_due_orders() >= 1

    with prefork_worker(queue, tmp_path, portal_file_store, "heir"):
        for job_id in job_ids:
            done = wait_for_state(client, job_id, {"COMPLETED", "FAILED", "CANCELLED"}, timeout_s=180)
            assert done["state"] == "COMPLETED", done
            wait_until_finished(client, job_id)

    session = setup.session(setup.members[0])
    for job in Job.objects.filter(pk__in=job_ids):
        assert session.slurm().find_by_name(batch_script.job_name(job.uuid, job.title)) == [job.slurm_job_id]
    assert not TaskOrder.objects.filter(done_at=None, task_name="jobs.tasks.submit_job_task").exists()
