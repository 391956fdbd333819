"""Queues of task orders (portal.queues): names follow the runtime default queue, an order keeps its queue,
the sweep sends it there again, and every service that orders cluster work names its cluster's queue."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from portal import task_orders
from portal.celery import app as celery_app
from portal.enqueue import enqueue_on_commit
from portal.models import TaskOrder
from portal.queues import cluster_queue, default_queue, queue_or_default

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounting", "accounts", "clusters", "frontend", "jobs", "notifications", "portal", "templates_app")
# The only ordered tasks that touch no cluster: they stay on the default queue.
DATABASE_TASKS = {"notifications.tasks.send_delivery_task"}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(task name, queue) of every send to the broker; nothing reaches Redis."""
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, **options: sent.append((name, options["queue"])))
    return sent


def test_a_clusters_queue_is_the_runtime_default_queue_and_the_profile_id(monkeypatch) -> None:
    monkeypatch.setitem(celery_app.conf, "task_default_queue", "test-private")
    assert default_queue() == "test-private"
    assert cluster_queue(42) == "test-private.cluster.42"
    assert queue_or_default("") == "test-private"  # an order made before queues
    assert queue_or_default("test-private.cluster.42") == "test-private.cluster.42"


@pytest.mark.django_db(transaction=True)
def test_an_order_keeps_its_queue_and_is_sent_there_after_the_commit(sent) -> None:
    task_id = enqueue_on_commit("jobs.tasks.finish_job_task", 7, key="finish:7", queue=cluster_queue(3))
    assert TaskOrder.objects.get(task_id=task_id).queue == cluster_queue(3)
    assert sent == [("jobs.tasks.finish_job_task", cluster_queue(3))]

    database_task_id = enqueue_on_commit("notifications.tasks.send_delivery_task", 9)
    assert TaskOrder.objects.get(task_id=database_task_id).queue == ""  # the default queue, whatever its name
    assert sent[1:] == [("notifications.tasks.send_delivery_task", default_queue())]


@pytest.mark.django_db
def test_the_sweep_sends_each_order_again_to_its_own_queue(sent, monkeypatch) -> None:
    monkeypatch.setattr("django.db.transaction.on_commit", lambda callback, using=None, robust=False: callback())
    on_cluster = enqueue_on_commit("jobs.tasks.sync_member_jobs_task", 1, 5, queue=cluster_queue(5))
    on_default = enqueue_on_commit("notifications.tasks.send_delivery_task", 2)
    from_before_queues = enqueue_on_commit("jobs.tasks.finish_job_task", 3)
    TaskOrder.objects.filter(task_id=from_before_queues).update(queue="")
    sent.clear()
    monkeypatch.setitem(celery_app.conf, "task_default_queue", "renamed")  # the default is read at each send
    TaskOrder.objects.update(lease_until=timezone.now() - timedelta(seconds=1))  # never started: due again

    assert task_orders.dispatch_due_orders() == 3

    assert sorted(sent) == sorted(
        [
            ("jobs.tasks.sync_member_jobs_task", TaskOrder.objects.get(task_id=on_cluster).queue),
            ("notifications.tasks.send_delivery_task", "renamed"),
            ("jobs.tasks.finish_job_task", "renamed"),
        ]
    )
    assert TaskOrder.objects.get(task_id=on_default).queue == ""
    assert TaskOrder.objects.get(task_id=on_cluster).queue.endswith(".cluster.5")


def module_constants(tree: ast.Module) -> dict[str, Any]:
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def ordered_tasks() -> list[tuple[str, str, bool]]:
    """(task name, file, whether `queue=` is given) for every enqueue_on_commit call in the apps."""
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            constants = module_constants(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "enqueue_on_commit" and node.args:
                    first = node.args[0]
                    name = first.value if isinstance(first, ast.Constant) else constants.get(getattr(first, "id", ""))
                    has_queue = any(keyword.arg == "queue" for keyword in node.keywords)
                    found.append((str(name), str(path.relative_to(ROOT)), has_queue))
    return found


def test_every_ordered_task_that_touches_a_cluster_names_its_clusters_queue() -> None:
    calls = ordered_tasks()
    assert len(calls) >= 24  # the scan finds the services' orders (submission, copies, sync, finish, usage, ...)
    assert {name for name, _, _ in calls} >= DATABASE_TASKS | {"accounting.tasks.record_usage_task"}
    without_queue = sorted({(name, path) for name, path, has_queue in calls if not has_queue})
    assert without_queue == [("notifications.tasks.send_delivery_task", "notifications/services.py")]
    with_queue_for_database_work = [
        (name, path) for name, path, has_queue in calls if has_queue and name in DATABASE_TASKS
    ]
    assert with_queue_for_database_work == []
