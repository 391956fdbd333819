"""Celery entry points for notifications: take ids, call one service, return.

`send_delivery_task` is ordered (`portal.enqueue`) by `notify` and by the sweep; the delivery's own
lease and conditional updates make a duplicate run do nothing. The sweep runs from beat.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from notifications import delivery
from portal.durable import DurableTask


class SendTask(DurableTask):
    patience = timedelta(minutes=10)  # retries are the delivery's own (backoff), not the order's


@shared_task(base=SendTask, time_limit=120, soft_time_limit=100)
def send_delivery_task(delivery_id: int) -> str:
    """Send one notification on one channel, if it is due and no live run holds it."""
    return delivery.send_delivery(delivery_id=delivery_id)


@shared_task(time_limit=60, soft_time_limit=50, ignore_result=True)
def order_due_deliveries_task() -> int:
    """Beat: order the deliveries whose retry is due or whose sending run died."""
    return delivery.order_due_deliveries()
