"""Fixtures of the scale-out tests: a default queue of the test's own (and so cluster queues of its own), and a
Redis database of their own for tests whose counts in Redis no other test run may touch."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from redis import Redis

from clusters.gateway import redis_client
from portal.celery import app as celery_app

# Every test run on this machine shares Redis database 0, and each test there clears every profile's SSH budget
# (tests/conftest.py): a budget counted there could be emptied by another run's test midway.
PRIVATE_REDIS_DB = 14


def queue_keys(client: Redis, queue: str) -> Iterator[bytes]:
    for pattern in (queue, f"{queue}.cluster.*", f"_kombu.binding*.{queue}", f"_kombu.binding*.{queue}.cluster.*"):
        yield from client.scan_iter(match=pattern)


@pytest.fixture
def private_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process sends to `test-scale-…` and its `.cluster.N` queues; what is left there goes afterwards."""
    queue = f"test-scale-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    yield queue
    client = redis_client()
    for key in list(queue_keys(client, queue)):
        client.delete(key)


@pytest.fixture
def private_redis(private_queue: str) -> Iterator[str]:
    """The URL of Redis database 14, empty of the portal's keys: broker, locks and budgets of this test alone."""
    base, _, database = settings.CELERY_BROKER_URL.rpartition("/")
    assert database.isdigit() is True  # a URL naming its database, as PORTAL_REDIS_URL does
    url = f"{base}/{PRIVATE_REDIS_DB}"
    client = Redis.from_url(url)

    def clear() -> None:
        for key in [*client.scan_iter(match="namd-portal:*"), *queue_keys(client, private_queue)]:
            client.delete(key)

    clear()
    yield url
    clear()
    client.close()
