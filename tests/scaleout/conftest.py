"""Fixtures of the scale-out tests: a default queue of the test's own (and so cluster queues of its own)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from clusters.gateway import redis_client
from portal.celery import app as celery_app


@pytest.fixture
def private_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process sends to `test-scale-…` and its `.cluster.N` queues; what is left there goes afterwards."""
    queue = f"test-scale-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    yield queue
    client = redis_client()
    for pattern in (queue, f"{queue}.cluster.*", f"_kombu.binding*.{queue}", f"_kombu.binding*.{queue}.cluster.*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)
