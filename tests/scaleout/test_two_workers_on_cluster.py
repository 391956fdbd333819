"""Two real `celery worker` processes (as two worker containers would be) on one Redis and the local cluster.

What must hold across workers is kept in Redis: the per-(member, cluster) sync lock
(jobs/services/status_sync.py) and the cluster's budget of new SSH sessions (clusters/ssh/budget.py). Syncs are
sent straight to the cluster's queue, many at once and without orders, as overlapping beats or a duplicate
delivery would send them, so both workers run them side by side. Measured from the outside: each sync's
remote commands (RemoteCommandRecord) and the logins the cluster's sshd logged. Broker, locks and budgets are
in a Redis database of these tests' own (`private_redis`).
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from clusters.models import RemoteCommandRecord
from jobs.models import Job
from portal.celery import app as celery_app
from portal.queues import cluster_queue
from tests.conftest import celery_process
from tests.factories import JobFactory
from tests.jobs.cluster_jobs import RECIPE, ClusterSetup, register, wait_for
from tests.scaleout.processes import SshdLogins, log_lines, most_in_any_window

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SYNC_TASK = "jobs.tasks.sync_member_jobs_task"
MISSING_SLURM_ID = 990_000_000  # ids SLURM never gave: each sync asks squeue and sacct, and nothing changes
ROUNDING = timedelta(milliseconds=1)  # a record's duration is kept in whole milliseconds


def two_workers(queue: str, redis_url: str, tmp_path: Path, file_store: Path, stack: ExitStack) -> list[Path]:
    """Two prefork workers with two processes each, on `queue` and (following it) every cluster queue."""
    logs = []
    for name in ("left", "right"):
        log = tmp_path / f"{name}.log"
        arguments = ["worker", "--queues", queue, "--pool", "prefork", "--concurrency", "2"]
        stack.enter_context(
            celery_process(
                [*arguments, "--hostname", f"{name}-{queue}@%h"],
                queue=queue,
                log_path=log,
                file_store=file_store,
                env={"PORTAL_REDIS_URL": redis_url},
            )
        )
        logs.append(log)
    return logs


def held_jobs(setup: ClusterSetup) -> None:
    """A job in SLURM's queue (as far as the portal knows) for each member, never due for beat's syncs: a beat of
    the run's other tests (the session's worker and beat, on Redis database 0 and its budget) must not log these
    members in while the two workers are measured. Submitted an hour ago, synced "tomorrow", a day's interval."""
    setup.profile.sync_interval_s = 86_400
    setup.profile.save(update_fields=["sync_interval_s"])
    now = timezone.now()
    for number, member in enumerate(setup.members):
        JobFactory(
            owner=member,
            profile=setup.profile,
            recipe_name=RECIPE,
            submitted=True,
            slurm_job_id=str(MISSING_SLURM_ID + number),
            submitted_at=now - timedelta(hours=1),
            last_synced_at=now + timedelta(days=1),
        )


def send_syncs(setup: ClusterSetup, redis_url: str, rounds: int) -> list[str]:
    """`rounds` syncs of every member's group, sent at once to the cluster's queue (no orders: duplicates)."""
    task_ids = []
    with celery_app.connection_for_write(redis_url) as connection:
        for _ in range(rounds):
            for member in setup.members:
                task_id = str(uuid.uuid4())
                celery_app.send_task(
                    SYNC_TASK,
                    args=(member.pk, setup.profile.pk),
                    task_id=task_id,
                    queue=cluster_queue(setup.profile.pk),
                    connection=connection,
                )
                task_ids.append(task_id)
    return task_ids


def wait_until_run(logs: list[Path], task_ids: list[str]) -> dict[Path, int]:
    """Until every sync has run (a worker logged its success); how many each worker ran."""

    def ran() -> dict[Path, int] | None:
        done = {log: [line for line in log_lines(log, "succeeded") if SYNC_TASK in line] for log in logs}
        count = {
            log: sum(1 for line in lines for task_id in task_ids if task_id in line) for log, lines in done.items()
        }
        return count if sum(count.values()) == len(task_ids) else None

    return wait_for(ran, timeout_s=240, what="every sync to run")


def wait_until_following(logs: list[Path], queue: str) -> None:
    wait_for(
        lambda: all(log_lines(log, f"Started consuming from {queue}") for log in logs),
        timeout_s=60,
        what=f"both workers to follow {queue}",
    )


def test_two_workers_never_sync_one_members_jobs_on_one_cluster_at_once(
    tmp_path, portal_file_store, private_queue, private_redis
) -> None:
    setup = register(("np_ci_scale_a", "np_ci_scale_b"))
    held_jobs(setup)
    with ExitStack() as stack:
        logs = two_workers(private_queue, private_redis, tmp_path, portal_file_store, stack)
        wait_until_following(logs, cluster_queue(setup.profile.pk))
        task_ids = send_syncs(setup, private_redis, rounds=8)
        ran_by = wait_until_run(logs, task_ids)

    assert all(count > 0 for count in ran_by.values()) is True  # both workers took syncs
    spans: dict[int, dict[str, list]] = defaultdict(dict)  # member -> sync -> [first start, last end]
    for record in RemoteCommandRecord.objects.filter(task_id__in=task_ids):
        end = record.started_at + timedelta(milliseconds=record.duration_ms)
        span = spans[record.user_id].setdefault(record.task_id, [record.started_at, end])
        span[0], span[1] = min(span[0], record.started_at), max(span[1], end)
    synced = sum(len(by_task) for by_task in spans.values())
    assert 0 < synced < len(task_ids)  # some syncs ran; the others found their group's sync running and stood down
    assert set(spans) == {member.pk for member in setup.members}
    for by_task in spans.values():
        ordered = sorted(by_task.values())
        overlaps = [
            (earlier, later) for earlier, later in itertools.pairwise(ordered) if later[0] < earlier[1] - ROUNDING
        ]
        assert overlaps == []


def test_two_workers_together_keep_the_clusters_budget_of_new_ssh_sessions(
    tmp_path, portal_file_store, private_queue, private_redis
) -> None:
    usernames = tuple(f"np_ci_budget_{letter}" for letter in "abcde")
    setup = register(usernames)
    limit = 3  # fewer than the members, each of whom needs a session of their own in each worker process
    setup.profile.new_sessions_per_minute = limit
    setup.profile.save(update_fields=["new_sessions_per_minute"])
    held_jobs(setup)
    with ExitStack() as stack:
        logs = two_workers(private_queue, private_redis, tmp_path, portal_file_store, stack)
        wait_until_following(logs, cluster_queue(setup.profile.pk))
        sshd = SshdLogins(set(usernames))
        try:
            wait_until_run(logs, send_syncs(setup, private_redis, rounds=2))
        finally:
            logins = sshd.stop()

    assert len(logins) >= 1
    # A window a little shorter than the budget's minute: a login is read up to 0.1 s after sshd wrote it,
    # and taken from the budget a moment before it.
    assert most_in_any_window([stamp for stamp, _ in logins], window_s=55) <= limit
    refused = Job.objects.filter(profile=setup.profile, error_code="SYNC_SESSION_BUDGET_EXHAUSTED").count()
    assert refused >= 1  # the budget bound: members waited and were refused for now, across both workers
