"""A real Celery worker SIGKILLed (with its pool children) in the middle of sending a mail to the real local SMTP
server: the delivery stays `sending` under its lease; once the lease is out the sweep orders it again and a new
worker sends it. The mail is in the store exactly once. The SMTP server is reached through a front that keeps the
first connection without a greeting, so the kill lands while the send is under way; the leases (60 s and the
order's 45 s) are moved into the past rather than waited for, the one liberty taken with time."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications import delivery, services
from notifications.models import Delivery, Event, NotificationPreference
from portal import task_orders
from portal.celery import app as celery_app
from portal.models import TaskOrder
from tests.conftest import celery_process
from tests.factories import UserFactory
from tests.jobs.cluster_jobs import wait_for
from tests.notifications.mail_store import mails_to, require_local_smtp
from tests.notifications.smtp_front import smtp_front

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def prefork_worker(queue: str, tmp_path, file_store, name: str):
    arguments = ["worker", "--queues", queue, "--pool", "prefork", "--concurrency", "1", "--hostname", f"{name}@%h"]
    return celery_process(arguments, queue=queue, log_path=tmp_path / f"{name}.log", file_store=file_store)


def test_a_worker_killed_mid_send_still_sends_the_mail_once(tmp_path, portal_file_store, monkeypatch) -> None:
    require_local_smtp()
    queue = f"test-mailkill-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    address = f"killed-{uuid.uuid4().hex[:10]}@example.org"
    member = UserFactory(username=f"np_mailkill_{uuid.uuid4().hex[:6]}", email=address)
    NotificationPreference.objects.create(user=member, email_enabled=True, events=[Event.JOB_FAILED])

    with smtp_front((settings.ENV.email_host, settings.ENV.email_port)) as front:
        monkeypatch.setenv("PORTAL_EMAIL_PORT", str(front.port))  # the workers send through the front
        with prefork_worker(queue, tmp_path, portal_file_store, "doomed") as doomed:
            with transaction.atomic():
                told = services.notify(
                    member, Event.JOB_FAILED, subject="Job failed: water", text="It failed.", link="http://x/", key="k"
                )
            (mail,) = told.deliveries.all()
            wait_for(lambda: front.held, timeout_s=30, what="the send to reach the SMTP front", every_s=0.05)
            assert Delivery.objects.get(pk=mail.pk).state == Delivery.State.SENDING
            os.killpg(doomed.pid, signal.SIGKILL)  # the worker and its pool children, mid-send
            doomed.wait(timeout=10)

        assert mails_to(address) == []
        assert delivery.order_due_deliveries() == 0  # its lease still runs: nobody takes it over yet
        Delivery.objects.filter(pk=mail.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
        TaskOrder.objects.filter(key=f"notify:{mail.pk}", done_at=None).update(
            lease_until=timezone.now() - timedelta(seconds=1)
        )
        front.holding.clear()  # the SMTP server answers from now on
        task_orders.dispatch_due_orders()
        delivery.order_due_deliveries()
        with prefork_worker(queue, tmp_path, portal_file_store, "heir"):
            wait_for(
                lambda: Delivery.objects.get(pk=mail.pk).state == Delivery.State.SENT, timeout_s=60, what="the send"
            )
            wait_for(lambda: mails_to(address), timeout_s=10, what="the mail in the store")

    mail.refresh_from_db()
    assert mail.attempts == 2  # the killed try and the one that sent
    (stored,) = mails_to(address)
    assert stored["Subject"] == "Job failed: water"
