"""Sending Celery tasks from services: by name, as an order written in the caller's transaction.

Services sit below the task modules that call them, so they name a task instead of importing it.
The order (`portal.task_orders`) is written with the state change that asks for it and sent after
the commit, so a worker never looks for a row that is not there yet, a broker that is down loses
nothing (beat's sweep sends it later), and a killed worker's task runs again. Must never know what a
task does.
"""

from __future__ import annotations

import uuid
from typing import Any

from portal.task_orders import place_order


def enqueue_on_commit(
    task_name: str, *args: Any, countdown: float = 0, task_id: str = "", key: str = "", queue: str = ""
) -> str:
    """Order task `task_name` with `args`, sent after the commit; its id (for the 202 reply).

    With `key`, an order still open under that key is the one kept (one finish per job at a time). A task
    that touches a cluster goes to that cluster's queue (`portal.queues.cluster_queue(profile_id)`), so a slow
    cluster holds up only its own workers; empty: the default queue (pure database work).
    """
    return place_order(task_name, args, task_id=task_id or str(uuid.uuid4()), countdown=countdown, key=key, queue=queue)
