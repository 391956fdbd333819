"""portal.beat: of several beats on one Redis, only the lock's holder schedules; a standby takes over once the
holder's lock is gone; Redis away means no scheduling and no crash. `tests/scaleout/test_two_beats.py` proves
the same with two real `celery beat` processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from redis import Redis

from portal.beat import TICK_S, BeatLock, SingletonScheduler, lock_client, lock_key
from portal.celery import app as celery_app


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url(settings.CELERY_BROKER_URL)
    yield client
    client.close()


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch, redis: Redis) -> Iterator[str]:
    """A default queue of this test's own, so its beat lock is too."""
    name = f"test-beat-{uuid.uuid4().hex[:12]}"
    monkeypatch.setitem(celery_app.conf, "task_default_queue", name)
    yield name
    redis.delete(lock_key(name))


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, *args, **options: sent.append(name))
    return sent


def scheduler(folder: Path, name: str) -> SingletonScheduler:
    """A beat's scheduler whose every entry is overdue (the first tick that may schedule sends them)."""
    beat = SingletonScheduler(app=celery_app, schedule_filename=str(folder / name))
    for entry in beat.schedule.values():
        entry.last_run_at = timezone.now() - timedelta(hours=1)
    return beat


def tick(beat: SingletonScheduler, times: int = 10) -> float:
    return [beat.tick() for _ in range(times)][-1]


def test_one_lock_one_holder_and_a_standby_takes_it_once_it_is_gone(redis, queue) -> None:
    first, second = BeatLock(redis, lock_key(queue)), BeatLock(redis, lock_key(queue))
    assert first.hold() is True
    assert second.hold() is False
    assert first.hold() is True  # renewed
    assert 0 < redis.pttl(lock_key(queue)) <= first.ttl_ms

    redis.delete(lock_key(queue))  # its TTL ran out (the holder was killed or paused)
    assert second.hold() is True
    assert first.hold() is False  # back from a pause: no longer the holder
    first.release()  # not its lock: nothing happens
    assert redis.get(lock_key(queue)) == second.token.encode()
    second.release()
    assert redis.get(lock_key(queue)) is None


def test_only_the_holding_beat_schedules_and_the_standby_takes_over(tmp_path, queue, sent, redis) -> None:
    active, standby = scheduler(tmp_path, "active"), scheduler(tmp_path, "standby")
    try:
        tick(active)
        assert active.is_active is True
        assert set(sent) >= {"portal.tasks.dispatch_due_orders_task", "jobs.tasks.request_due_syncs_task"}

        sent.clear()
        assert tick(standby) == TICK_S
        assert standby.is_active is False
        assert sent == []

        redis.delete(lock_key(queue))  # the active beat was killed: its lock expires
        tick(standby)
        assert standby.is_active is True
        assert "portal.tasks.dispatch_due_orders_task" in sent
        sent.clear()
        tick(active)
        assert active.is_active is False
        assert sent == []
    finally:
        active.close()
        standby.close()
    assert redis.get(lock_key(queue)) is None  # a beat stopped cleanly hands its lock back


def test_with_redis_away_a_beat_schedules_nothing_and_keeps_ticking(tmp_path, queue, sent) -> None:
    beat = scheduler(tmp_path, "cut-off")
    beat.lock = BeatLock(lock_client("redis://127.0.0.1:1/0"), lock_key(queue))  # nothing listens there
    try:
        assert tick(beat, times=3) == TICK_S
        assert beat.is_active is False
        assert sent == []
    finally:
        beat.close()
