"""Celery entry points for cluster work: each takes ids, calls one service, returns.

Each is a `portal.durable.DurableTask`, like every task a service orders: its run claims its task order and
closes it (a plain task left its order open, and beat's sweep sent it again every 90 s, for ever); a cluster
that does not answer postpones it for a few minutes, as someone is waiting to see the answer.
"""

from __future__ import annotations

from datetime import timedelta

from celery import Task, shared_task

from clusters import services
from portal.durable import DurableTask

ASKED_NOW = timedelta(minutes=10)  # an admin or member waits for the answer: not worth retrying long


@shared_task(base=DurableTask, patience=ASKED_NOW, bind=True, time_limit=120, soft_time_limit=100)
def check_credential_connection_task(self: Task, credential_id: int, acting_user_id: int) -> None:
    services.check_credential_connection(
        credential_id=credential_id, acting_user_id=acting_user_id, task_id=self.request.id or ""
    )


@shared_task(base=DurableTask, patience=ASKED_NOW, time_limit=60, soft_time_limit=45)
def fetch_first_contact_host_key_task(profile_id: int) -> None:
    services.fetch_first_contact_host_key(profile_id=profile_id)


@shared_task(base=DurableTask, patience=ASKED_NOW, bind=True, time_limit=120, soft_time_limit=100)
def discover_partitions_task(self: Task, profile_id: int, acting_user_id: int) -> None:
    services.discover_partitions(profile_id=profile_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(base=DurableTask, patience=ASKED_NOW, bind=True, time_limit=120, soft_time_limit=100)
def detect_namd_builds_task(self: Task, profile_id: int, acting_user_id: int) -> None:
    services.detect_namd_builds(profile_id=profile_id, acting_user_id=acting_user_id, task_id=self.request.id or "")
