"""Fixtures shared by the cluster tests: a Redis client on a test database and a key prefix of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

# Database 15 of the portal's own Redis: the transport's budget and breaker tests never touch the
# keys of the running portal (database 0).
REDIS_URL = "redis://127.0.0.1:56379/15"


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def key_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A unique key prefix; every key under it is deleted afterwards."""
    prefix = f"np-test-transport-{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in redis_client.scan_iter(match=f"{prefix}:*"):
        redis_client.delete(key)
