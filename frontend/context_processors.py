"""What every page's template needs beyond Django's own context: how often notifications.js polls."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def notifications_poll(request: HttpRequest) -> dict[str, int]:
    return {"notifications_poll_ms": settings.NOTIFICATIONS_POLL_MS}
