"""A real Celery worker SIGKILLed (with its pool children) while it runs the accounting of finished jobs on the
local SLURM cluster: the order stays open, the sweep sends it again, a new worker writes every job's usage row
exactly once. As in tests/jobs/test_worker_killed_on_cluster.py, the lease's 45 s are not waited for: the test
moves the lease into the past, the one liberty it takes with time."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounting.models import JobUsage, UsageMonth
from accounting.orders import RECORD_USAGE_TASK
from portal import task_orders
from portal.celery import app as celery_app
from portal.models import TaskOrder
from tests.accounting.cluster_usage import run_jobs_to_their_end, sweep_as_beat_would
from tests.jobs.cluster_jobs import register, wait_for
from tests.jobs.test_worker_killed_on_cluster import prefork_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_usage_killed"
JOBS = 3


def test_a_worker_killed_during_the_accounting_loses_no_row_and_doubles_none(
    tmp_path, portal_file_store, monkeypatch
) -> None:
    setup = register((MEMBER,))
    queue = f"test-usage-killed-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    client = setup.client(setup.members[0])

    with prefork_worker(queue, tmp_path, portal_file_store, "doomed") as doomed:
        job_ids = [job["id"] for job in run_jobs_to_their_end(client, setup.profile, cpus=(1,) * JOBS)]
        wait_for(
            lambda: TaskOrder.objects.filter(task_name=RECORD_USAGE_TASK, state="RUNNING").exists(),
            timeout_s=30,
            what="the accounting to start",
            every_s=0.01,
        )
        os.killpg(doomed.pid, signal.SIGKILL)  # the worker and its pool children, mid-task
        doomed.wait(timeout=10)

    in_flight = TaskOrder.objects.filter(task_name=RECORD_USAGE_TASK, done_at=None)
    assert in_flight.exists()  # the kill left the order open
    in_flight.update(lease_until=timezone.now() - timedelta(seconds=1))  # the lease runs out
    assert task_orders.dispatch_due_orders() >= 1

    def all_accounted() -> bool:
        if JobUsage.objects.filter(job_id__in=job_ids).count() == JOBS:
            return not TaskOrder.objects.filter(task_name=RECORD_USAGE_TASK, done_at=None).exists()
        sweep_as_beat_would()
        return False

    with prefork_worker(queue, tmp_path, portal_file_store, "survivor"):
        wait_for(all_accounted, timeout_s=90, what="every job accounted and no order open", every_s=2.0)
    rows = JobUsage.objects.filter(job_id__in=job_ids)
    assert sorted(rows.values_list("job_id", flat=True)) == sorted(job_ids)  # one each: none lost, none doubled
    assert all(row.is_from_portal_times is False for row in rows)
    assert sum(month.jobs for month in UsageMonth.objects.filter(owner=setup.members[0])) == JOBS
