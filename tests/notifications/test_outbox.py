"""notifications.services.notify and notifications.delivery on the real database: written once per key, sent once
per channel under duplicate delivery, retried with backoff, refused for good when it cannot work. Mail goes to
Django's in-memory backend here (pytest-django's); the integration tests use the real local SMTP server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications import delivery, services
from notifications.models import Channel, Delivery, Event, Notification, NotificationPreference, WebhookHostAllowance
from portal.models import TaskOrder
from tests.factories import UserFactory
from tests.notifications.receivers import webhook_receiver

pytestmark = pytest.mark.django_db


def member_wanting(*, webhook_url: str = "", email: str = "carol@example.org", events=None):
    user = UserFactory(username="carol_n", email=email)
    NotificationPreference.objects.create(
        user=user, email_enabled=True, webhook_url=webhook_url, events=events or [Event.JOB_COMPLETED]
    )
    return user


def tell(user, key: str = "job:1:end", event: str = Event.JOB_COMPLETED):
    return services.notify(
        user, event, subject="Job completed: water", text="It completed.", link="http://x/1", key=key
    )


def test_notify_writes_one_notification_and_orders_each_channel_once(sent_tasks) -> None:
    user = member_wanting(webhook_url="https://93.184.215.14/hook")
    first = tell(user)
    again = tell(user)
    assert again is None
    assert Notification.objects.filter(recipient=user).count() == 1
    channels = sorted(Delivery.objects.filter(notification=first).values_list("channel", flat=True))
    assert channels == [Channel.EMAIL, Channel.WEBHOOK]
    keys = sorted(TaskOrder.objects.filter(task_name=services.SEND_TASK).values_list("key", flat=True))
    assert keys == sorted(f"notify:{pk}" for pk in Delivery.objects.values_list("pk", flat=True))


def test_nothing_is_written_for_a_member_without_preferences_or_not_wanting_the_event(sent_tasks) -> None:
    stranger = UserFactory(username="dave_n")
    assert tell(stranger) is None
    user = member_wanting(events=[Event.JOB_FAILED])
    assert tell(user) is None
    assert Notification.objects.count() == 0


def test_a_delivery_is_sent_once_under_duplicate_runs(sent_tasks) -> None:
    user = member_wanting()
    (email,) = tell(user).deliveries.all()
    assert delivery.send_delivery(delivery_id=email.pk) == Delivery.State.SENT
    assert delivery.send_delivery(delivery_id=email.pk) == Delivery.State.SENT  # a duplicate run: nothing sent
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert (message.to, message.subject) == (["carol@example.org"], "Job completed: water")
    assert message.body == "It completed.\n\nhttp://x/1\n"
    assert message.extra_headers["X-Portal-Idempotency-Key"] == f"{user.pk}:job_completed:job:1:end"
    email.refresh_from_db()
    assert (email.attempts, email.sent_at is not None) == (1, True)


def test_a_live_lease_keeps_a_second_run_off_and_a_dead_one_is_taken_over(sent_tasks) -> None:
    user = member_wanting()
    (email,) = tell(user).deliveries.all()
    now = timezone.now()
    assert delivery.claim(email.pk, now) is not None  # a run that then died mid-send
    assert delivery.send_delivery(delivery_id=email.pk) == Delivery.State.SENDING
    assert len(mail.outbox) == 0
    assert delivery.order_due_deliveries(now + timedelta(seconds=1)) == 0
    Delivery.objects.filter(pk=email.pk).update(lease_until=now - timedelta(seconds=1))
    assert delivery.order_due_deliveries() == 1
    assert delivery.send_delivery(delivery_id=email.pk) == Delivery.State.SENT
    assert len(mail.outbox) == 1


def test_an_smtp_outage_is_retried_with_backoff_then_given_up(sent_tasks, settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens on the discard port here
    user = member_wanting()
    (email,) = tell(user).deliveries.all()
    before = timezone.now()
    assert delivery.send_delivery(delivery_id=email.pk) == Delivery.State.PENDING
    email.refresh_from_db()
    assert (email.last_error_code, email.attempts) == ("EMAIL_UNAVAILABLE", 1)
    assert email.next_attempt_at >= before + delivery.backoff(1)
    assert delivery.send_delivery(delivery_id=email.pk) == Delivery.State.PENDING  # not due yet: not tried
    email.refresh_from_db()
    assert email.attempts == 1
    Delivery.objects.filter(pk=email.pk).update(attempts=delivery.MAX_ATTEMPTS - 1, next_attempt_at=before)
    assert delivery.send_delivery(delivery_id=email.pk) == Delivery.State.FAILED


def test_backoff_grows_and_is_capped() -> None:
    assert [delivery.backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert delivery.backoff(20) == delivery.MAX_BACKOFF


def test_a_webhook_reaches_an_allowed_local_receiver_once_with_slack_text(sent_tasks) -> None:
    with webhook_receiver() as receiver:
        WebhookHostAllowance.objects.create(host="127.0.0.1", allow_http=True)
        user = member_wanting(webhook_url=receiver.url, email="")
        (hook,) = tell(user).deliveries.all()
        assert delivery.send_delivery(delivery_id=hook.pk) == Delivery.State.SENT
        assert delivery.send_delivery(delivery_id=hook.pk) == Delivery.State.SENT
    (call,) = receiver.calls
    assert call["path"] == "/hook"
    assert call["json"]["text"] == "*Job completed: water*\nIt completed.\n<http://x/1>"
    assert (call["json"]["event"], call["json"]["link"]) == ("job_completed", "http://x/1")
    assert call["headers"]["X-Portal-Idempotency-Key"] == f"{user.pk}:job_completed:job:1:end"


def test_a_webhook_to_a_local_host_not_allowed_is_refused_at_send_time(sent_tasks) -> None:
    with webhook_receiver() as receiver:
        allowance = WebhookHostAllowance.objects.create(host="127.0.0.1", allow_http=True)
        user = member_wanting(webhook_url=receiver.url, email="")
        (hook,) = tell(user).deliveries.all()
        allowance.delete()  # the admin took it back after the member saved the URL
        assert delivery.send_delivery(delivery_id=hook.pk) == Delivery.State.FAILED
    hook.refresh_from_db()
    assert hook.last_error_code == "WEBHOOK_URL_NOT_HTTPS"
    assert receiver.calls == []


def test_a_webhook_redirect_is_not_followed(sent_tasks) -> None:
    with webhook_receiver(status=302, location="http://169.254.169.254/") as receiver:
        WebhookHostAllowance.objects.create(host="127.0.0.1", allow_http=True)
        user = member_wanting(webhook_url=receiver.url, email="")
        (hook,) = tell(user).deliveries.all()
        assert delivery.send_delivery(delivery_id=hook.pk) == Delivery.State.FAILED
    hook.refresh_from_db()
    assert hook.last_error_code == "WEBHOOK_REDIRECT_REFUSED"
    assert len(receiver.calls) == 1


def test_a_webhook_server_error_is_retried(sent_tasks) -> None:
    with webhook_receiver(status=503) as receiver:
        WebhookHostAllowance.objects.create(host="127.0.0.1", allow_http=True)
        user = member_wanting(webhook_url=receiver.url, email="")
        (hook,) = tell(user).deliveries.all()
        assert delivery.send_delivery(delivery_id=hook.pk) == Delivery.State.PENDING
    hook.refresh_from_db()
    assert hook.last_error_code == "WEBHOOK_SERVER_ERROR"
