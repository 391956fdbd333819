"""The Celery app: Redis broker, settings from Django, safe delivery for remote work.

Tasks that touch a cluster must be idempotent: they are acknowledged late and re-queued if a
worker dies, so the broker may deliver them twice.
"""

from __future__ import annotations

import os

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
    # longest task so a slow SSH action is never run twice because of the broker.
    broker_transport_options={"visibility_timeout": 3 * 3600},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    # The job sync: each tick enqueues the (member, cluster) groups whose interval has passed
    # (jobs/sync.py); the tick itself never touches a cluster.
    beat_schedule={
        "request-due-job-syncs": {"task": "jobs.tasks.request_due_syncs_task", "schedule": 5.0},
        # Staged downloads past PORTAL_STAGED_DOWNLOAD_TTL_HOURS and abandoned resumable uploads leave the
        # portal's file store (jobs/services/storage.py).
        "expire-staged-files": {"task": "jobs.tasks.expire_staged_files_task", "schedule": 900.0},
    },
)
app.autodiscover_tasks()
