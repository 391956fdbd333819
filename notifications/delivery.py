"""Sending a delivery exactly once as far as the portal can tell: claim with a lease, send, mark sent.

pending --claim--> sending (token, lease) --send ok--> sent
                                         --retryable failure--> pending again (backoff), failed after MAX_ATTEMPTS
                                         --final failure--> failed (its code kept)
A claim is a conditional update: a duplicate task, or a second sweep, finds the row sending under a live
lease, or sent, and does nothing. A worker killed mid-send leaves the row `sending`; once its lease is
out the sweep orders it again and the next claim takes it over.

The at-least-once edge, stated honestly: if the worker dies after the SMTP server (or the webhook's
receiver) accepted the message and before the row says `sent`, the message goes again. Every try carries
the same Message-ID and `X-Portal-Idempotency-Key`, so a receiver can drop the repeat. A send that
outlasts its lease could also overlap a takeover: the SMTP and HTTP timeouts are kept well under the lease.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from clusters.crypto import SecretDecryptionError
from notifications import channels
from notifications.models import Channel, Delivery, NotificationPreference
from notifications.services import check_member_webhook_url, order_send
from notifications.webhook_urls import WebhookUrlRefused

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # > SMTP_TIMEOUT_S and WEBHOOK_TIMEOUT_S: a live send is never taken over
MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(minutes=30)
SWEEP_BATCH = 500


def backoff(attempts: int) -> timedelta:
    """How long after its `attempts`-th failed try a delivery is tried again: 30 s, 1 min, 2 min ... 30 min."""
    return min(timedelta(seconds=30 * 2 ** (attempts - 1)), MAX_BACKOFF)


def claim(delivery_id: int, now: datetime) -> str | None:
    """Take the delivery for this run: its token, or None when it is not due, held by a live run or done."""
    token = secrets.token_hex(8)
    due = Q(state=Delivery.State.PENDING, next_attempt_at__lte=now) | Q(
        state=Delivery.State.SENDING, lease_until__lte=now
    )
    taken = Delivery.objects.filter(due, pk=delivery_id).update(
        state=Delivery.State.SENDING, claim_token=token, lease_until=now + LEASE, attempts=F("attempts") + 1
    )
    return token if taken else None


def send_delivery(*, delivery_id: int) -> str:
    """Send one delivery if it is due and free; the state it is left in."""
    now = timezone.now()
    token = claim(delivery_id, now)
    if token is None:
        logger.info("notification_delivery_skipped", extra={"delivery_id": delivery_id})
        return Delivery.objects.filter(pk=delivery_id).values_list("state", flat=True).first() or ""
    delivery = Delivery.objects.select_related("notification__recipient").get(pk=delivery_id)
    try:
        _send(delivery)
    except channels.SendFailure as failure:
        return _failed(delivery, token, failure)
    Delivery.objects.filter(pk=delivery.pk, claim_token=token).update(
        state=Delivery.State.SENT, sent_at=timezone.now(), last_error_code="", lease_until=None
    )
    logger.info("notification_sent", extra={"delivery_id": delivery.pk, "channel": delivery.channel})
    return Delivery.State.SENT


def _send(delivery: Delivery) -> None:
    notification = delivery.notification
    recipient = notification.recipient
    preference = NotificationPreference.objects.filter(user=recipient).first()
    if delivery.channel == Channel.EMAIL:
        if preference is None or not preference.email_enabled or not recipient.email:
            raise channels.SendFailure("CHANNEL_TURNED_OFF", retryable=False)
        channels.send_email(
            to=recipient.email,
            subject=notification.subject,
            body=f"{notification.text}\n\n{notification.link}\n",
            sender=settings.DEFAULT_FROM_EMAIL,
            idempotency_key=notification.idempotency_key,
        )
        return
    if preference is None or not preference.webhook_set:
        raise channels.SendFailure("CHANNEL_TURNED_OFF", retryable=False)
    try:  # checked again now: the host's addresses may have changed since the member saved it
        target = check_member_webhook_url(preference.webhook_plaintext())
    except SecretDecryptionError as exc:  # the keys lost the one it was encrypted with
        raise channels.SendFailure("WEBHOOK_URL_UNREADABLE", retryable=False) from exc
    except WebhookUrlRefused as exc:
        raise channels.SendFailure(exc.code, retryable=exc.code == "WEBHOOK_HOST_UNRESOLVED") from exc
    payload = {
        "text": f"*{notification.subject}*\n{notification.text}\n<{notification.link}>",
        "event": notification.event,
        "subject": notification.subject,
        "link": notification.link,
        "fields": notification.fields,
        "notification_id": notification.pk,
    }
    channels.send_webhook(target, payload, idempotency_key=notification.idempotency_key)


def _failed(delivery: Delivery, token: str, failure: channels.SendFailure) -> str:
    attempts = Delivery.objects.filter(pk=delivery.pk).values_list("attempts", flat=True).get()
    gives_up = not failure.retryable or attempts >= MAX_ATTEMPTS
    state = Delivery.State.FAILED if gives_up else Delivery.State.PENDING
    Delivery.objects.filter(pk=delivery.pk, claim_token=token).update(
        state=state,
        last_error_code=failure.code,
        next_attempt_at=timezone.now() + backoff(attempts),
        lease_until=None,
    )
    logger.warning(
        "notification_send_failed",
        extra={"delivery_id": delivery.pk, "channel": delivery.channel, "code": failure.code, "final": gives_up},
    )
    return state


def order_due_deliveries(now: datetime | None = None) -> int:
    """Beat: order the send of every delivery due (a retry's time came, or a dead run's lease ran out)."""
    now = now or timezone.now()
    due = Q(state=Delivery.State.PENDING, next_attempt_at__lte=now) | Q(
        state=Delivery.State.SENDING, lease_until__lte=now
    )
    ids = list(Delivery.objects.filter(due).order_by("next_attempt_at").values_list("pk", flat=True)[:SWEEP_BATCH])
    for delivery_id in ids:
        order_send(delivery_id)  # an order still open for it is the one kept
    return len(ids)
