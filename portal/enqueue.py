"""Sending Celery tasks from services: by name, once the surrounding transaction commits.

Services sit below the task modules that call them, so they name a task instead of importing it.
The send waits for the commit, so a worker never looks for a row that is not there yet; outside a
transaction it goes at once. Must never know what a task does.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from portal.celery import app


def enqueue_on_commit(task_name: str, *args: Any, countdown: float = 0, task_id: str = "") -> str:
    """Send task `task_name` with `args` after the commit; returns its id (for the 202 reply)."""
    task_id = task_id or str(uuid.uuid4())
    transaction.on_commit(lambda: app.send_task(task_name, args=args, task_id=task_id, countdown=countdown))
    return task_id
