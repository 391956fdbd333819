"""Cluster tasks hold their task orders like every ordered task: a run closes its order, the sweep leaves it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from clusters.models import ClusterCredential
from clusters.services import request_connection_test
from clusters.tasks import check_credential_connection_task
from portal import task_orders
from portal.celery import app as celery_app
from portal.models import TaskOrder
from tests.factories import CredentialFactory

pytestmark = pytest.mark.django_db


def test_a_connection_test_closes_its_order_and_is_not_sent_again(monkeypatch) -> None:
    sent = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, **options: sent.append(name))
    monkeypatch.setattr(transaction, "on_commit", lambda callback, using=None, robust=False: callback())
    credential = CredentialFactory(profile__login_host="127.0.0.1", profile__login_port=1)  # nothing listens
    request_connection_test(credential=credential, acting_user=credential.user)
    (order,) = TaskOrder.objects.all()

    check_credential_connection_task.apply(args=order.args, task_id=order.task_id)

    assert ClusterCredential.objects.get(pk=credential.pk).last_test_ok is False  # it ran: the cluster is away
    assert TaskOrder.objects.get(pk=order.pk).state == TaskOrder.State.DONE
    TaskOrder.objects.update(lease_until=timezone.now() - timedelta(minutes=5))
    assert task_orders.dispatch_due_orders() == 0  # a plain task's open order was sent again every 90 s
    assert sent == ["clusters.tasks.check_credential_connection_task"]
