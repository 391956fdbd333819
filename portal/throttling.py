"""The API's rate limit, kept in the Redis cache: while Redis is away it lets requests through (logged),
so a broker outage never turns every API call into a 500 (the actions themselves wait as task orders)."""

from __future__ import annotations

import structlog
from django.http import HttpRequest
from ninja.throttling import AuthRateThrottle
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)


class OutageTolerantRateThrottle(AuthRateThrottle):
    def allow_request(self, request: HttpRequest) -> bool:
        try:
            return super().allow_request(request)
        except RedisError as exc:
            log.warning("rate_limit_unavailable", error=str(exc)[:200])
            return True
