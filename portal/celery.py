"""The Celery app: Redis broker, settings from Django, safe delivery for remote work.

Tasks that touch a cluster must be idempotent: they are acknowledged late, and a task order
(`portal.task_orders`) sends a task again when its worker died, so one may be delivered twice.

Queues (`portal.queues`): the default queue for database work, one queue per cluster profile for the
tasks that touch it. A plain worker also follows every cluster queue (`portal.worker_queues`);
`manage.py run_workers` runs one worker per queue instead. Beat schedules only while it holds a lock in
Redis (`portal.beat`), so a second beat stands by.
"""

from __future__ import annotations

import os

import click
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    result_expires=600,
    task_time_limit=900,
    task_soft_time_limit=840,
    # kombu redelivers an unacknowledged task after visibility_timeout: keep it well above the
    # longest task. A killed worker's task is sent again sooner by its order's lease; a late
    # redelivery then finds the order done and does nothing.
    broker_transport_options={"visibility_timeout": 3 * 3600, "socket_connect_timeout": 2},
    broker_connection_retry_on_startup=True,
    # A broker that is down fails a send within a second or two: the order stays in PostgreSQL and
    # beat's sweep sends it later (a web request never hangs on Redis).
    broker_connection_timeout=2,
    task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
    worker_hijack_root_logger=False,
    task_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    # One beat of many schedules: the others stand by until its lock in Redis runs out (portal/beat.py).
    beat_scheduler="portal.beat:SingletonScheduler",
    # The job sync: each tick enqueues the (member, cluster) groups whose interval has passed
    # (jobs/services/status_sync.py); the tick itself never touches a cluster. The order sweep sends
    # again the task orders whose lease ran out.
    beat_schedule={
        "request-due-job-syncs": {"task": "jobs.tasks.request_due_syncs_task", "schedule": 5.0},
        "dispatch-due-task-orders": {"task": "portal.tasks.dispatch_due_orders_task", "schedule": 5.0},
        # Staged downloads past PORTAL_STAGED_DOWNLOAD_TTL_HOURS and abandoned resumable uploads leave the
        # portal's file store (jobs/services/storage.py).
        # Notifications whose retry is due or whose sending run died are ordered again (notifications/delivery.py).
        "order-due-notifications": {"task": "notifications.tasks.order_due_deliveries_task", "schedule": 10.0},
        "expire-staged-files": {"task": "jobs.tasks.expire_staged_files_task", "schedule": 900.0},
        # Finished jobs whose accounting order was lost (accounting/services.py): ordered again.
        "request-due-accounting": {"task": "accounting.tasks.request_due_accounting_task", "schedule": 60.0},
    },
)
app.autodiscover_tasks()

# A plain worker also follows every cluster profile's queue (portal/worker_queues.py); `run_workers` gives its
# children --no-cluster-queues. The step is named by path, like beat_scheduler: it is loaded when a worker
# starts, and it imports this module (for the queue names) in turn.
app.user_options["worker"].add(
    click.Option(
        ["--cluster-queues/--no-cluster-queues"],
        default=True,
        help="Also consume every cluster profile's queue, followed as profiles come and go.",
    )
)
app.steps["consumer"].add("portal.worker_queues:FollowClusterQueues")
