"""How often a cluster may be asked for a new SSH session: connect retries and the shared session budget.

Owns `RetryPolicy` (exponential backoff with full jitter for transient connect faults) and `SessionBudget`
(a cluster-wide budget of new sessions per minute, a sliding window in Redis that every worker process
shares). Must never know Django, settings or which member connects: the limit and the Redis client come
in as arguments. Redis errors propagate unchanged.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clusters.ssh.errors import SessionBudgetExhausted

if TYPE_CHECKING:
    import redis

logger = logging.getLogger(__name__)

EVENT_SESSION_BUDGET_WAIT = "ssh.session_budget_wait"
DEFAULT_KEY_PREFIX = "namd-portal:ssh"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient connect faults (Unreachable, connect timeouts)."""

    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay_s(self, failed_attempts: int, rng: random.Random) -> float:
        """The pause after `failed_attempts` failures: uniform in [0, min(max, base * 2**(n-1))]."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (failed_attempts - 1)))


# Sliding window of the last minute's new sessions: a sorted set of (member, start time in ms).
_BUDGET_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


class SessionBudget:
    """A cluster-wide budget of NEW SSH sessions per minute, shared by every worker through Redis."""

    window_ms = 60_000

    def __init__(
        self,
        redis_client: redis.Redis,
        cluster_key: str,
        per_minute_limit: int,
        *,
        max_wait_s: float = 10.0,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if per_minute_limit < 1:
            raise ValueError("per_minute_limit must be at least 1")
        self.cluster_key = cluster_key
        self.per_minute_limit = per_minute_limit
        self.max_wait_s = max_wait_s
        self.redis_key = f"{key_prefix}:budget:{cluster_key}"
        self._script = redis_client.register_script(_BUDGET_LUA)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def try_take(self) -> float:
        """Take one session if the window allows: 0.0, else the seconds until one frees up."""
        now_ms = int(self._clock() * 1000)
        member = f"{now_ms}:{secrets.token_hex(8)}"
        wait_ms = self._script(keys=[self.redis_key], args=[now_ms, self.window_ms, self.per_minute_limit, member])
        return int(wait_ms) / 1000

    def take(self) -> None:
        """Take one session, waiting with jitter up to max_wait_s. Raises SessionBudgetExhausted."""
        deadline = self._clock() + self.max_wait_s
        while True:
            wait_s = self.try_take()
            if wait_s == 0:
                return
            remaining_s = deadline - self._clock()
            if remaining_s <= 0:
                raise SessionBudgetExhausted(
                    f"cluster {self.cluster_key} allows {self.per_minute_limit} new SSH sessions a minute; "
                    f"none freed up within {self.max_wait_s:g}s"
                )
            # Jitter spreads the workers that all wait for the same freed slot.
            pause_s = min(remaining_s, wait_s + self._rng.uniform(0, 0.5))
            logger.info(EVENT_SESSION_BUDGET_WAIT, extra={"cluster": self.cluster_key, "wait_s": round(pause_s, 3)})
            self._sleep(pause_s)
