"""Beat exactly once, however many `celery beat` processes run: the schedule runs only under a lock in Redis.

Every beat (one per machine or container) uses `SingletonScheduler` (`beat_scheduler` in portal/celery.py).
The one that holds the lock (a random token under a key named for the deployment's default queue, 30 s
TTL, renewed at every tick of at most 5 s) runs the due entries; any other ticks idle as a standby and
takes the lock once the holder's has expired (killed, paused, cut off from Redis), so the schedule moves
to it within about half a minute. A holder that finds its lock gone (taken over while it was paused)
stops scheduling at its next tick. Redis away: nobody holds the lock and nothing is scheduled (nothing
could be sent either); beat keeps ticking and takes the lock again once Redis answers. A beat stopped
cleanly hands the lock back at once. Must never know what the scheduled tasks do.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from celery.beat import PersistentScheduler
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from portal.queues import default_queue

logger = logging.getLogger(__name__)

LOCK_TTL_S = 30.0
TICK_S = 5.0  # a holder renews at least this often (well inside the TTL); a standby looks this often
KEY_PREFIX = "namd-portal:beat"

# Renew or hand back only our own lock: the token is checked and the key changed in one step.
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lock_client(url: str) -> Redis:
    """A client that fails at once when Redis is away (no retries): the tick goes on as a standby."""
    return Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))


def lock_key(queue: str) -> str:
    """The lock of the beats that share `queue` as their default queue (one deployment, or one test run)."""
    return f"{KEY_PREFIX}:{queue}:lock"


class BeatLock:
    """One beat's hold on the schedule: taken when free, renewed while ours, released when asked."""

    def __init__(self, client: Redis, key: str, *, ttl_s: float = LOCK_TTL_S) -> None:
        self.key = key
        self.token = secrets.token_hex(16)
        self.ttl_ms = int(ttl_s * 1000)
        self._client = client
        self._renew = client.register_script(_RENEW_LUA)
        self._release = client.register_script(_RELEASE_LUA)

    def hold(self) -> bool:
        """Renew our lock, or take it if it is free: True while this beat holds it. Raises RedisError."""
        if self._renew(keys=[self.key], args=[self.token, self.ttl_ms]):
            return True
        return bool(self._client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def release(self) -> None:
        """Hand the lock back if it is still ours (a standby takes over at its next tick). Raises RedisError."""
        self._release(keys=[self.key], args=[self.token])


class SingletonScheduler(PersistentScheduler):
    """celery beat's persistent scheduler, running due entries only while it holds the beat lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = BeatLock(lock_client(self.app.conf.broker_url), lock_key(default_queue()))
        self.is_active: bool | None = None  # None until the first tick says which

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.holds_lock():
            return TICK_S
        return min(super().tick(*args, **kwargs), TICK_S)

    def holds_lock(self) -> bool:
        """Take or renew the lock; False (logged) when another beat holds it or Redis does not answer."""
        try:
            holds = self.lock.hold()
        except RedisError as exc:
            logger.warning("beat_lock_unreachable", extra={"lock": self.lock.key, "error": str(exc)[:200]})
            holds = False
        if holds is not self.is_active:
            self.is_active = holds
            logger.info("beat_active" if holds else "beat_standby", extra={"lock": self.lock.key})
        return holds

    def close(self) -> None:
        if self.is_active:
            try:
                self.lock.release()
            except RedisError as exc:  # its TTL hands it over instead
                logger.warning("beat_lock_unreleased", extra={"lock": self.lock.key, "error": str(exc)[:200]})
        super().close()
