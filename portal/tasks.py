"""Tasks of the task system itself: the liveness ping and the sweep that sends due task orders."""

from __future__ import annotations

from celery import Task, shared_task

from portal import task_orders


@shared_task(bind=True, ignore_result=False, acks_late=False)
def ping_task(self: Task, payload: str) -> dict[str, str]:
    """Answer with the payload and the worker's name: proves broker and worker are alive."""
    return {"payload": payload, "worker": self.request.hostname or ""}


@shared_task(time_limit=60, soft_time_limit=50, ignore_result=True)
def dispatch_due_orders_task() -> int:
    """Beat: send again the orders whose lease ran out (never sent, lost by the broker, their run died)."""
    return task_orders.dispatch_due_orders()
