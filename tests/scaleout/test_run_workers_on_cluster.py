"""`manage.py run_workers` for real: its children, a real job on the local cluster, and a slow cluster's queue
that holds up nothing but itself."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from clusters.models import ClusterCredential
from clusters.services import request_connection_test
from portal.models import TaskOrder
from portal.queues import cluster_queue
from tests.conftest import portal_process
from tests.factories import ClusterProfileFactory, CredentialFactory
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
from tests.scaleout.processes import children_by_queue, is_alive

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@contextmanager
def run_workers(queue: str, log_path: Path, file_store: Path) -> Iterator[object]:
    command = [sys.executable, "manage.py", "run_workers", "--concurrency", "1", "--cluster-concurrency", "1"]
    with portal_process(command, queue=queue, log_path=log_path, file_store=file_store) as supervisor:
        yield supervisor


def wait_for_children(supervisor_pid: int, queues: set[str]) -> dict[str, int]:
    return wait_for(
        lambda: queues <= set(children := children_by_queue(supervisor_pid)) and children,
        timeout_s=60,
        what=f"workers for {sorted(queues)}",
    )


def test_run_workers_runs_a_job_and_keeps_a_worker_per_profile_as_profiles_and_workers_come_and_go(
    tmp_path, portal_file_store, private_queue
) -> None:
    setup = register(("np_ci_run_workers",))
    client = setup.client(setup.members[0])
    profile_queue = cluster_queue(setup.profile.pk)
    with run_workers(private_queue, tmp_path / "run_workers.log", portal_file_store) as supervisor:
        wait_for_children(supervisor.pid, {private_queue, profile_queue})

        job_id = create_job(client, setup.profile, values={**WATER, **QUICK, **CELL, "run_steps": 100})["id"]
        upload_inputs(client, job_id)
        wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "READY", timeout_s=90, what="READY")
        assert client.post(f"/api/v1/jobs/{job_id}/submit").status_code == 202
        assert (
            wait_for_state(client, job_id, {"COMPLETED", "FAILED", "CANCELLED"}, timeout_s=180)["state"] == "COMPLETED"
        )
        wait_until_finished(client, job_id)
        submission = TaskOrder.objects.get(task_name="jobs.tasks.submit_job_task", args=[job_id, setup.members[0].pk])
        assert (submission.queue, submission.state) == (profile_queue, TaskOrder.State.DONE)  # only its child reads it

        newcomer = ClusterProfileFactory(login_host="127.0.0.1", login_port=1)
        newcomer_queue = cluster_queue(newcomer.pk)
        first_pid = wait_for_children(supervisor.pid, {newcomer_queue})[newcomer_queue]  # no restart needed
        os.kill(first_pid, signal.SIGKILL)
        wait_for(
            lambda: children_by_queue(supervisor.pid).get(newcomer_queue, first_pid) != first_pid,
            timeout_s=60,
            what="the dead worker to be started again",
        )
        newcomer.delete()
        wait_for(
            lambda: newcomer_queue not in children_by_queue(supervisor.pid),
            timeout_s=60,
            what="the deleted profile's worker to stop",
        )

        children = children_by_queue(supervisor.pid)
        assert set(children) == {private_queue, profile_queue}
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
    assert [pid for pid in children.values() if is_alive(pid)] == []


class SilentLoginNode:
    """A login node that takes the TCP connection and never says a word (no SSH banner): a slow cluster."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            self.held.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


def test_a_slow_clusters_tasks_do_not_hold_up_another_clusters(tmp_path, portal_file_store, private_queue) -> None:
    setup = register(("np_ci_fast_lane",))
    fast = ClusterCredential.objects.get(user=setup.members[0], profile=setup.profile)
    silent = SilentLoginNode()
    try:
        slow_profile = ClusterProfileFactory(  # a pinned key, as a profile needs one before any login
            login_host="127.0.0.1", login_port=silent.port, pinned_host_keys=setup.profile.pinned_host_keys
        )
        slow = [CredentialFactory(profile=slow_profile) for _ in range(2)]
        with run_workers(private_queue, tmp_path / "run_workers.log", portal_file_store) as supervisor:
            wait_for_children(supervisor.pid, {cluster_queue(setup.profile.pk), cluster_queue(slow_profile.pk)})
            for credential in slow:
                request_connection_test(credential=credential, acting_user=credential.user)
            wait_for(lambda: silent.held, timeout_s=60, what="the slow cluster's worker to be stuck in a login")

            request_connection_test(credential=fast, acting_user=fast.user)  # sent after the slow ones
            wait_for(
                lambda: ClusterCredential.objects.get(pk=fast.pk).last_test_ok is not None,
                timeout_s=60,
                what="the other cluster's connection test",
            )

            assert ClusterCredential.objects.get(pk=fast.pk).last_test_ok is True
            still_testing = ClusterCredential.objects.filter(pk__in=[c.pk for c in slow], last_test_ok=None).count()
            assert still_testing == 2  # the slow cluster's tests, sent first, are still waiting for its login node
            silent.close()  # its logins fail now, and its worker stops without waiting for them
    finally:
        silent.close()
