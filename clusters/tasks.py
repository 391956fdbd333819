"""Celery entry points for cluster work: each takes ids, calls one service, returns."""

from __future__ import annotations

from celery import Task, shared_task

from clusters import services


@shared_task(bind=True, acks_late=True, time_limit=120, soft_time_limit=100)
def check_credential_connection_task(self: Task, credential_id: int, acting_user_id: int) -> None:
    services.check_credential_connection(
        credential_id=credential_id, acting_user_id=acting_user_id, task_id=self.request.id or ""
    )


@shared_task(acks_late=True, time_limit=60, soft_time_limit=45)
def fetch_first_contact_host_key_task(profile_id: int) -> None:
    services.fetch_first_contact_host_key(profile_id=profile_id)


@shared_task(bind=True, acks_late=True, time_limit=120, soft_time_limit=100)
def discover_partitions_task(self: Task, profile_id: int, acting_user_id: int) -> None:
    services.discover_partitions(profile_id=profile_id, acting_user_id=acting_user_id, task_id=self.request.id or "")


@shared_task(bind=True, acks_late=True, time_limit=120, soft_time_limit=100)
def detect_namd_builds_task(self: Task, profile_id: int, acting_user_id: int) -> None:
    services.detect_namd_builds(profile_id=profile_id, acting_user_id=acting_user_id, task_id=self.request.id or "")
