"""Which Celery queue a task goes to: the default queue, or the queue of the cluster it works on.

A slow cluster (a login node that answers in seconds, a long results copy) must hold up only the
workers of its own queue, so every task that touches a cluster is sent to its profile's queue,
`<default>.cluster.<profile id>`; pure database work (notifications, beat's sweeps, a sweep turn that
only orders other tasks) goes to the default queue. The default queue is Celery's runtime
`task_default_queue` (PORTAL_CELERY_TASK_QUEUE; the tests point it at a private queue, and the cluster
queues follow it). Must never know what a task does.
"""

from __future__ import annotations

from django.apps import apps

from portal.celery import app

CLUSTER_QUEUE_INFIX = ".cluster."


def default_queue() -> str:
    """The queue of pure database work, and the prefix of every cluster queue."""
    return str(app.conf.task_default_queue)


def cluster_queue(profile_id: int) -> str:
    """The queue of the tasks that work on cluster profile `profile_id`."""
    return f"{default_queue()}{CLUSTER_QUEUE_INFIX}{profile_id}"


def queue_or_default(queue: str) -> str:
    """The queue an order goes to: its own, or the default queue (orders made before queues have none)."""
    return queue or default_queue()


def cluster_queues() -> dict[int, str]:
    """Every cluster profile's queue by profile id, active or not (an inactive one still finishes its jobs)."""
    # By name: portal wires the apps together and is imported before Django's app registry is ready.
    profile_model = apps.get_model("clusters", "ClusterProfile")
    return {pk: cluster_queue(pk) for pk in profile_model.objects.order_by("pk").values_list("pk", flat=True)}
