"""The accounting order of one member's finished jobs on one cluster: its task and key, sent by name.

Finishing a job asks for it (`jobs.services.finishing`), and so does beat's sweep for a job whose order was
lost. The key `usage:<owner>:<profile>` keeps one open order per group, so a batch of jobs finishing
together is accounted by ONE sacct call. Must never know what the task does.
"""

from __future__ import annotations

from portal.enqueue import enqueue_on_commit
from portal.queues import cluster_queue

RECORD_USAGE_TASK = "accounting.tasks.record_usage_task"
BATCH_WAIT_S = 5  # jobs of one group finishing within this share the order (and its one sacct call)


def request_usage_accounting(*, owner_id: int, profile_id: int) -> str:
    """Order the accounting of the member's finished jobs on the cluster (after the commit); its task id."""
    return enqueue_on_commit(
        RECORD_USAGE_TASK,
        owner_id,
        profile_id,
        countdown=BATCH_WAIT_S,
        key=f"usage:{owner_id}:{profile_id}",
        queue=cluster_queue(profile_id),
    )
