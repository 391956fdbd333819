"""Tasks that check the task system itself."""

from __future__ import annotations

from celery import Task, shared_task


@shared_task(bind=True, ignore_result=False, acks_late=False)
def ping_task(self: Task, payload: str) -> dict[str, str]:
    """Answer with the payload and the worker's name: proves broker and worker are alive."""
    return {"payload": payload, "worker": self.request.hostname or ""}
