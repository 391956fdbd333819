"""Celery entry points for accounting: each takes ids, calls one service, returns. Idempotent under redelivery."""

from __future__ import annotations

from datetime import timedelta

from celery import Task, shared_task

from accounting import services
from portal.durable import DurableTask


@shared_task(base=DurableTask, patience=timedelta(hours=6), time_limit=300, soft_time_limit=280, bind=True)
def record_usage_task(self: Task, owner_id: int, profile_id: int) -> int:
    return services.record_usage(owner_id=owner_id, profile_id=profile_id, task_id=self.request.id or "")


@shared_task(time_limit=60, soft_time_limit=50, ignore_result=True)
def request_due_accounting_task() -> int:
    return services.request_due_accounting()
