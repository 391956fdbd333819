"""portal.worker_supervisor: a child per queue, started, restarted, stopped as profiles and children come and go.

The children here are stand-in processes (a sleeping Python) so the supervision itself is quick to see;
`tests/scaleout/test_run_workers_on_cluster.py` runs the real `manage.py run_workers` with real workers.
"""

from __future__ import annotations

import signal
import sys

import pytest

from portal.queues import cluster_queue, default_queue
from portal.worker_supervisor import STEADY_S, WorkerSupervisor
from tests.factories import ClusterProfileFactory

pytestmark = pytest.mark.django_db


class StandInSupervisor(WorkerSupervisor):
    def argv(self, queue: str, concurrency: int) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(60)", queue, str(concurrency)]


def queues_and_concurrency(supervisor: WorkerSupervisor) -> dict[str, int]:
    return {queue: child.concurrency for queue, child in supervisor.children.items()}


def test_a_child_per_queue_started_restarted_and_stopped_with_the_profiles() -> None:
    first = ClusterProfileFactory()
    supervisor = StandInSupervisor(concurrency=3, cluster_concurrency=1, poll_s=0)
    try:
        supervisor.reconcile(now=100.0)
        assert queues_and_concurrency(supervisor) == {default_queue(): 3, cluster_queue(first.pk): 1}

        second = ClusterProfileFactory()
        supervisor.reconcile(now=101.0)
        assert set(supervisor.children) == {default_queue(), cluster_queue(first.pk), cluster_queue(second.pk)}

        died = supervisor.children[cluster_queue(first.pk)].process
        died.kill()
        died.wait()
        supervisor.reconcile(now=102.0)  # it died young: started again after a backoff, not at once
        assert cluster_queue(first.pk) not in supervisor.children
        supervisor.reconcile(now=104.0)
        restarted = supervisor.children[cluster_queue(first.pk)].process
        assert restarted.pid != died.pid
        assert restarted.poll() is None

        leaving = supervisor.children[cluster_queue(second.pk)].process
        second.delete()
        supervisor.reconcile(now=105.0)
        assert cluster_queue(second.pk) not in supervisor.children
        assert leaving.wait(timeout=10) == -signal.SIGTERM  # told to stop warmly
        running = [child.process for child in supervisor.children.values()]
    finally:
        supervisor.stop_all()
    assert supervisor.children == {}
    assert [process.returncode for process in running] == [-signal.SIGTERM] * 2


def test_a_child_that_ran_steadily_is_restarted_at_once() -> None:
    supervisor = StandInSupervisor(poll_s=0)
    try:
        supervisor.reconcile(now=0.0)
        child = supervisor.children[default_queue()].process
        child.kill()
        child.wait()
        supervisor.reconcile(now=STEADY_S + 1)
        assert supervisor.children[default_queue()].process.pid != child.pid
    finally:
        supervisor.stop_all()
