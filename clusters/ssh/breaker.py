"""The per-cluster circuit breaker on connect failures, kept in Redis so that every worker agrees.

Owns the breaker's states, its Lua scripts and the read the UI uses (`breaker_state`). Must never know
Django, settings or what a failure was beyond "the host did not answer": the pool reports failures and
successes. Redis errors propagate unchanged.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from clusters.ssh.budget import DEFAULT_KEY_PREFIX
from clusters.ssh.errors import ClusterDegraded

if TYPE_CHECKING:
    import redis

logger = logging.getLogger(__name__)

EVENT_BREAKER_OPENED = "ssh.breaker_opened"


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # the cool-down is over: the next connect is the one trial


# Returns "closed" (go), "trial" (go, as the single half-open trial) or "open" (fail fast).
_BREAKER_BEFORE_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then return 'closed' end
local now = tonumber(ARGV[1])
if state == 'open' then
  if now < tonumber(redis.call('HGET', KEYS[1], 'open_until')) then return 'open' end
else
  if now < tonumber(redis.call('HGET', KEYS[1], 'trial_until')) then return 'open' end
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'trial_until', now + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 'trial'
"""

# Counts consecutive connect failures within a window; returns the state after this failure.
_BREAKER_FAILURE_LUA = """
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'open' then return 'open' end
if state == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + cooldown)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 'reopened'
end
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
local started = tonumber(redis.call('HGET', KEYS[1], 'window_start') or '0')
if failures == 0 or now - started > window then
  failures = 1
  started = now
else
  failures = failures + 1
end
redis.call('HSET', KEYS[1], 'failures', failures, 'window_start', started)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if failures >= threshold then
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + cooldown)
  return 'opened'
end
return 'closed'
"""


def breaker_state(
    redis_client: redis.Redis,
    cluster_key: str,
    *,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    clock: Callable[[], float] = time.time,
) -> BreakerState:
    """The cluster's breaker state for the UI: anything but CLOSED shows the cluster as degraded."""
    fields = redis_client.hmget(_breaker_key(key_prefix, cluster_key), ["state", "open_until"])
    state = fields[0].decode() if isinstance(fields[0], bytes) else fields[0]
    if state == "open" and clock() >= float(fields[1]):
        return BreakerState.HALF_OPEN
    if state in ("open", "half_open"):
        return BreakerState(state)
    return BreakerState.CLOSED


def _breaker_key(key_prefix: str, cluster_key: str) -> str:
    return f"{key_prefix}:breaker:{cluster_key}"


class CircuitBreaker:
    """A per-cluster breaker on connect refusals/timeouts, kept in Redis so that all workers agree.

    Every failed connect attempt counts, retries included: a pool retrying 3 times adds 3 failures.
    Auth and host-key failures prove the host is up and close the breaker.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        failure_threshold: int = 5,
        window_s: float = 60.0,
        cooldown_s: float = 120.0,
        trial_timeout_s: float = 60.0,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        # A trial whose worker died never reports; another worker may try again after this long.
        self.trial_timeout_s = trial_timeout_s
        self.key_prefix = key_prefix
        self._redis = redis_client
        self._before = redis_client.register_script(_BREAKER_BEFORE_LUA)
        self._failure = redis_client.register_script(_BREAKER_FAILURE_LUA)
        self._clock = clock
        self._ttl_ms = int((window_s + cooldown_s + trial_timeout_s) * 2000)

    def before_connect(self, cluster_key: str) -> None:
        """Let a connect attempt through, or fail fast while open. Raises ClusterDegraded."""
        verdict = self._before(
            keys=[_breaker_key(self.key_prefix, cluster_key)], args=[self._clock(), self.trial_timeout_s, self._ttl_ms]
        )
        if _text(verdict) == "open":
            raise ClusterDegraded(f"cluster {cluster_key} is degraded: recent connects failed; retry later")

    def record_failure(self, cluster_key: str) -> BreakerState:
        """Count one connect refusal/timeout; returns the state after it."""
        verdict = _text(
            self._failure(
                keys=[_breaker_key(self.key_prefix, cluster_key)],
                args=[self._clock(), self.failure_threshold, self.window_s, self.cooldown_s, self._ttl_ms],
            )
        )
        if verdict in ("opened", "reopened"):
            logger.warning(EVENT_BREAKER_OPENED, extra={"cluster": cluster_key, "cooldown_s": self.cooldown_s})
        return BreakerState.CLOSED if verdict == "closed" else BreakerState.OPEN

    def record_success(self, cluster_key: str) -> None:
        """The host answered: close the breaker and forget earlier failures."""
        self._redis.delete(_breaker_key(self.key_prefix, cluster_key))

    def state(self, cluster_key: str) -> BreakerState:
        """See `breaker_state`."""
        return breaker_state(self._redis, cluster_key, key_prefix=self.key_prefix, clock=self._clock)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
