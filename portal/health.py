"""GET /api/v1/health: is the portal up, and can it reach its database and broker."""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest
from ninja import Router, Schema, Status
from redis import Redis
from redis.exceptions import RedisError

router = Router(tags=["health"])


class HealthOut(Schema):
    status: str
    database: bool
    broker: bool


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        return False


def _broker_ok() -> bool:
    try:
        client = Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
        return bool(client.ping())
    except RedisError:
        return False


@router.get("/health", auth=None, response={200: HealthOut, 503: HealthOut})
def health(request: HttpRequest) -> Status:
    database, broker = _database_ok(), _broker_ok()
    ok = database and broker
    return Status(200 if ok else 503, HealthOut(status="ok" if ok else "degraded", database=database, broker=broker))
