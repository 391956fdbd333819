"""Writes of notifications: a member's preferences, and `notify`, the one way anything asks to tell a member.

`notify(user, event, subject=, text=, link=, key=)` writes the notification and a delivery per channel the
member chose in the CALLER's transaction, and orders each delivery's send after the commit: a state change
and the message it causes commit together or not at all, and a send that fails never touches the state
change. Other apps (budgets, for one) call it with an event of `notifications.models.Event` and a key that
names the object and, for something that may happen again, its round (`"budget:7:2026-11:80"`); a second
call with the same key writes nothing. Must never know how a channel sends.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from notifications.models import Channel, Delivery, Event, Notification, NotificationPreference, WebhookHostAllowance
from notifications.webhook_urls import WebhookTarget, check_webhook_url
from portal.enqueue import enqueue_on_commit
from portal.errors import InvalidInput

SEND_TASK = "notifications.tasks.send_delivery_task"
DEFAULT_EVENTS = [event.value for event in Event]


def allowed_hosts() -> list[tuple[str, bool]]:
    """The hosts an admin allowed webhooks to, with whether plain http is allowed too."""
    return list(WebhookHostAllowance.objects.values_list("host", "allow_http"))


def check_member_webhook_url(url: str) -> WebhookTarget:
    """The URL checked against the allow-list and its host's addresses now. Raises WebhookUrlRefused."""
    return check_webhook_url(url, allowed_hosts=allowed_hosts())


def preferences_of(user: User) -> NotificationPreference:
    """The member's preferences, or the defaults a first save starts from (unsaved: nothing is sent)."""
    found = NotificationPreference.objects.filter(user=user).first()
    return found or NotificationPreference(user=user, email_enabled=True, events=list(DEFAULT_EVENTS))


def save_preferences(
    *, user: User, email_enabled: bool, webhook_url: str | None, browser_enabled: bool, events: list[str]
) -> NotificationPreference:
    """Store the member's choices. `webhook_url`: None keeps the current one, "" removes it, a URL (checked now)
    replaces it. Raises WebhookUrlRefused (with its code), InvalidInput (NOTIFY_EVENT_UNKNOWN)."""
    unknown = sorted(set(events) - set(DEFAULT_EVENTS))
    if unknown:
        raise InvalidInput(
            f"Unknown events: {', '.join(unknown)}.", code="NOTIFY_EVENT_UNKNOWN", details={"events": unknown}
        )
    choices: dict[str, Any] = {
        "email_enabled": email_enabled,
        "browser_enabled": browser_enabled,
        "events": [event for event in DEFAULT_EVENTS if event in events],
    }
    if webhook_url is not None:
        choices["webhook_url"] = webhook_url.strip()
        if choices["webhook_url"]:
            check_member_webhook_url(choices["webhook_url"])
    preference, _ = NotificationPreference.objects.update_or_create(user=user, defaults=choices)
    return preference


def absolute_link(path: str) -> str:
    """A page of the portal as a link a mail or a chat message can carry."""
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def notify(
    user: User,
    event: str,
    *,
    subject: str,
    text: str,
    link: str,
    key: str,
    fields: dict[str, Any] | None = None,
) -> Notification | None:
    """Tell `user` about `event` in the caller's transaction; None when they want no such message, or when a
    notification with this key (per recipient and event) was already written."""
    preference = NotificationPreference.objects.filter(user=user).first()
    if preference is None or not preference.wants(event):
        return None
    channels = []
    if preference.email_enabled and user.email:
        channels.append(Channel.EMAIL)
    if preference.webhook_set:
        channels.append(Channel.WEBHOOK)
    if not channels and not preference.browser_enabled:
        return None
    idempotency_key = f"{user.pk}:{event}:{key}"[:200]
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives a repeat
            notification = Notification.objects.create(
                recipient=user,
                event=event,
                idempotency_key=idempotency_key,
                subject=subject[:200],
                text=text,
                link=link,
                fields=fields or {},
            )
    except IntegrityError:
        return None
    now = timezone.now()
    for channel in channels:
        delivery = Delivery.objects.create(notification=notification, channel=channel, next_attempt_at=now)
        order_send(delivery.pk)
    return notification


def order_send(delivery_id: int) -> None:
    """The delivery's send, ordered after the commit (one open order per delivery)."""
    enqueue_on_commit(SEND_TASK, delivery_id, key=f"notify:{delivery_id}")
