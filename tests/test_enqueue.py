"""portal.enqueue: services send tasks by name after the commit; every name they use is a real task."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from portal.celery import app as celery_app
from portal.enqueue import enqueue_on_commit
from portal.queues import default_queue

APPS = ("accounts", "clusters", "frontend", "jobs", "portal", "templates_app")
ROOT = Path(__file__).resolve().parent.parent


def enqueued_names() -> dict[str, str]:
    """Task name -> the file that sends it, for every literal name given to enqueue_on_commit."""
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", "") == "enqueue_on_commit"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    found[node.args[0].value] = str(path.relative_to(ROOT))
    return found


def test_every_task_a_service_sends_is_registered_with_the_worker() -> None:
    celery_app.loader.import_default_modules()  # what a worker does at start: autodiscover the tasks modules
    names = enqueued_names()
    assert len(names) >= 15  # the scan finds the services' sends (submission, copies, sync, finish, ...)
    unknown = {name: path for name, path in names.items() if name not in celery_app.tasks}
    assert unknown == {}


@pytest.mark.django_db(transaction=True)
def test_a_task_is_sent_only_once_the_transaction_commits(monkeypatch) -> None:
    from django.db import transaction

    sent = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, **options: sent.append((name, args, options)))
    with transaction.atomic():
        task_id = enqueue_on_commit("jobs.tasks.finish_job_task", 7, countdown=2)
        assert sent == []
    assert sent == [
        ("jobs.tasks.finish_job_task", (7,), {"task_id": task_id, "countdown": 2, "queue": default_queue()})
    ]

    def send_then_fail() -> None:
        with transaction.atomic():
            enqueue_on_commit("jobs.tasks.finish_job_task", 8)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        send_then_fail()
    assert len(sent) == 1  # a rolled-back transaction sends nothing
