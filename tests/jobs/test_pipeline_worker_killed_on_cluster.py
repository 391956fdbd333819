"""A real Celery worker SIGKILLed (with its pool children) while it queues pipeline runs on the local cluster.

Its task orders stay open; once their lease is out the sweep sends them again and a new worker takes them:
every step of every run is in SLURM exactly once (one SLURM job carries its tag), the chain's order holds
(each step after the one before it) and every run completes. As in test_worker_killed_on_cluster.py, the
one liberty taken with time is moving the leases into the past.
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
from jobs.services import PipelineRequest, create_pipeline
from portal import task_orders
from portal.celery import app as celery_app
from portal.models import TaskOrder
from templates_app import batch_script
from templates_app.models import Protocol, ProtocolStage, Template
from templates_app.protocol_services import save_protocol
from tests.jobs.cluster_jobs import CELL, QUICK, RECIPE, WATER, register, upload_inputs, wait_for
from tests.jobs.test_pipelines_on_cluster import wait_for_run
from tests.jobs.test_worker_killed_on_cluster import prefork_worker
from tests.jobs.unit_jobs import RESOURCES

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_pipekill"
RUNS = 3
TASK = "jobs.tasks.submit_pipeline_task"


def two_stage_protocol() -> Protocol:
    protocol = Protocol(name="minimize then equilibrate", slug="min-then-eq")
    stages = [
        ProtocolStage(
            position=1,
            name="minimization",
            template=Template.objects.get(slug="vacuum-minimization"),
            continuation="first",
            values={"output_name": "mini"},
        ),
        ProtocolStage(
            position=2,
            name="equilibration",
            template=Template.objects.get(slug="npt-equilibration"),
            continuation="restart",
            values={"output_name": "eq", "run_steps": 100},
        ),
    ]
    return save_protocol(protocol=protocol, stages=stages)


def test_a_worker_killed_while_it_queues_chains_queues_every_step_once(
    tmp_path, portal_file_store, monkeypatch
) -> None:
    setup = register((MEMBER,))
    member = setup.members[0]
    queue = f"test-pipekill-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    client = setup.client(member)
    protocol = two_stage_protocol()
    request = PipelineRequest(
        protocol_id=protocol.pk,
        cluster_id=setup.profile.pk,
        recipe=RECIPE,
        title="killed",
        values={**WATER, **QUICK, **CELL},
        stage_values={},
        resources=RESOURCES,
    )

    with prefork_worker(queue, tmp_path, portal_file_store, "doomed") as doomed:
        runs = [create_pipeline(user=member, request=request) for _ in range(RUNS)]
        holders = [run.steps.get(position=1).pk for run in runs]
        for holder in holders:
            upload_inputs(client, holder)
        wait_for(lambda: Job.objects.filter(pk__in=holders, state="READY").count() == RUNS, timeout_s=90, what="READY")
        for run in runs:
            assert client.post(f"/api/v1/pipelines/{run.pk}/submit").status_code == 202
        wait_for(
            lambda: TaskOrder.objects.filter(task_name=TASK, state="RUNNING").exists(),
            timeout_s=30,
            what="a chain being queued",
            every_s=0.02,
        )
        # Within 0.1 s of the first chain starting: a chain is queued in two execs (~0.2 s), and the other
        # runs wait behind it, so the kill always leaves work undone.
        time.sleep(random.uniform(0, 0.1))
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)

    in_flight = TaskOrder.objects.filter(done_at=None, task_name=TASK)
    assert in_flight.exists()  # the kill left work undone
    in_flight.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert task_orders.dispatch_due_orders() >= 1

    with prefork_worker(queue, tmp_path, portal_file_store, "heir"):
        for run in runs:
            done = wait_for_run(client, run.pk, {"COMPLETED", "FAILED", "CANCELLED"}, timeout_s=300)
            assert done["state"] == "COMPLETED", done["steps"]

    session = setup.session(member)
    steps = list(Job.objects.filter(pipeline__in=runs).order_by("pipeline_id", "position"))
    assert len(steps) == 2 * RUNS
    found = session.slurm().find_by_names([batch_script.job_name(s.uuid, s.title) for s in steps])
    for step in steps:
        assert found[batch_script.job_name(step.uuid, step.title)] == [step.slurm_job_id]
    for first, second in zip(steps[::2], steps[1::2], strict=True):
        assert second.started_at >= first.ended_at  # afterok held
    assert not TaskOrder.objects.filter(done_at=None, task_name=TASK).exists()
