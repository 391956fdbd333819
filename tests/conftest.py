"""Shared fixtures: users of every role, an API client, a real Celery worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from tests.factories import UserFactory

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def member(db) -> User:
    return UserFactory(username="alice_t")


@pytest.fixture
def other_member(db) -> User:
    return UserFactory(username="bob_t")


@pytest.fixture
def lab_admin(db) -> User:
    return UserFactory(username="admin_t", is_staff=True, is_superuser=True)


@pytest.fixture
def inactive_member(db) -> User:
    return UserFactory(username="gone_t", is_active=False)


@pytest.fixture
def api_client() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture(scope="session")
def portal_file_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file store the test process and the worker share (uploads waiting, downloads fetched)."""
    return tmp_path_factory.mktemp("file-store")


@pytest.fixture(autouse=True)
def _shared_file_store(settings, portal_file_store: Path) -> None:
    settings.FILE_STORE = portal_file_store


@dataclass(frozen=True)
class WorkerProcess:
    queue: str
    process: subprocess.Popen


@contextmanager
def celery_process(
    arguments: list[str], *, queue: str, log_path: Path, file_store: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """`celery -A portal ARGUMENTS` on the test database, its tasks sent to `queue`; stopped on exit."""
    command = [sys.executable, "-m", "celery", "-A", "portal", *arguments, "--loglevel", "INFO"]
    with portal_process(command, queue=queue, log_path=log_path, file_store=file_store, env=env) as process:
        yield process


@contextmanager
def portal_process(
    command: list[str], *, queue: str, log_path: Path, file_store: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A portal process (a celery command, `manage.py run_workers`) on the test database, `queue` its default
    queue, `env` on top of the test's own settings; stopped on exit (SIGTERM, then SIGKILL after 20 s)."""
    with log_path.open("wb") as log_file:
        # It uses the test database (pytest-django's "test_" + name), so tasks see test data.
        env = {
            **os.environ,
            **(env or {}),
            "PORTAL_DB_NAME": "test_" + settings.DATABASES["default"]["NAME"].removeprefix("test_"),
            "PORTAL_FILE_STORE": str(file_store),
            # Tasks it sends itself (a sync enqueues finishes, beat its schedule) go to the test queue too.
            "PORTAL_CELERY_TASK_QUEUE": queue,
        }
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def celery_worker_process(tmp_path_factory: pytest.TempPathFactory, portal_file_store: Path) -> Iterator[WorkerProcess]:
    """A real `celery worker` process consuming a queue of its own, through the real Redis broker."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    arguments = ["worker", "--queues", queue, "--pool", "solo", "--hostname", f"{queue}@%h"]
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    with celery_process(arguments, queue=queue, log_path=log_path, file_store=portal_file_store) as process:
        yield WorkerProcess(queue=queue, process=process)


@pytest.fixture
def celery_worker(celery_worker_process: WorkerProcess, monkeypatch: pytest.MonkeyPatch) -> WorkerProcess:
    """The real worker, with the tasks this process sends (views, services, the live server) on its queue."""
    from portal.celery import app as celery_app

    monkeypatch.setitem(celery_app.conf, "task_default_queue", celery_worker_process.queue)
    return celery_worker_process


@pytest.fixture(autouse=True)
def _fresh_cluster_budgets_and_breakers() -> Iterator[None]:
    """Profile ids repeat between test databases; their SSH budgets and breakers in Redis must not."""
    from clusters.gateway import redis_client
    from clusters.ssh import DEFAULT_KEY_PREFIX

    def clear() -> None:
        client = redis_client()
        for key in client.scan_iter(f"{DEFAULT_KEY_PREFIX}*profile-*"):
            client.delete(key)

    clear()
    yield
    clear()
