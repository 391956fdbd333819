"""A member's own reads of notifications: their preferences and their newest notifications. Never another's."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from notifications.models import Notification

RECENT_LIMIT = 20


def recent_notifications(user: User, *, after_id: int) -> list[Notification]:
    """The member's notifications newer than `after_id`, oldest first, at most RECENT_LIMIT (the newest ones)."""
    newest: QuerySet[Notification] = Notification.objects.filter(recipient=user, pk__gt=after_id).order_by("-pk")
    return list(reversed(newest[:RECENT_LIMIT]))


def latest_notification_id(user: User) -> int:
    """Where a page that just opened starts polling from (it shows only what comes after)."""
    return Notification.objects.filter(recipient=user).order_by("-pk").values_list("pk", flat=True).first() or 0
