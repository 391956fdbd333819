"""Cluster work goes to its cluster's queue (portal.queues): what the services order, as they order it."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from accounting.orders import request_usage_accounting
from clusters.services import request_connection_test
from jobs.models import JobState
from jobs.services import request_delete
from jobs.services.readiness import start_submission
from jobs.services.status_sync import order_finish, request_member_refresh
from notifications.services import SEND_TASK
from portal.celery import app as celery_app
from portal.enqueue import enqueue_on_commit
from portal.queues import cluster_queue, default_queue
from tests.factories import ClusterProfileFactory, JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(task name, queue) of every send; the sends waiting for the commit are made at once."""
    sent: list[tuple[str, str]] = []

    def send_task(name: str, args: Any = None, **options: Any) -> None:
        sent.append((name, options["queue"]))

    monkeypatch.setattr(celery_app, "send_task", send_task)
    monkeypatch.setattr(transaction, "on_commit", lambda callback, using=None, robust=False: callback())
    return sent


def test_a_jobs_cluster_work_goes_to_its_clusters_queue(credential, sent) -> None:
    profile_queue = cluster_queue(credential.profile_id)
    job = JobFactory(owner=credential.user, profile=credential.profile, ready=True)
    start_submission(job, actor_id=job.owner_id, source="user")
    queued = JobFactory(owner=credential.user, profile=credential.profile, submitted=True)
    request_member_refresh(user_id=credential.user_id, job=queued)
    order_finish(queued.pk, profile_id=queued.profile_id)
    request_usage_accounting(owner_id=credential.user_id, profile_id=credential.profile_id)
    request_delete(user=credential.user, job_id=queued.pk)
    request_connection_test(credential=credential, acting_user=credential.user)

    assert sent == [
        ("jobs.tasks.submit_job_task", profile_queue),
        ("jobs.tasks.sync_member_jobs_task", profile_queue),
        ("jobs.tasks.finish_job_task", profile_queue),
        ("accounting.tasks.record_usage_task", profile_queue),
        ("jobs.tasks.delete_job_task", profile_queue),
        ("clusters.tasks.check_credential_connection_task", profile_queue),
    ]
    assert profile_queue == f"{default_queue()}.cluster.{credential.profile_id}"


def test_two_clusters_get_two_queues_and_database_work_the_default_one(credential, sent) -> None:
    other = ClusterProfileFactory()
    mine = JobFactory(owner=credential.user, profile=credential.profile, state=JobState.PENDING, slurm_job_id="71")
    order_finish(mine.pk, profile_id=credential.profile_id)
    order_finish(mine.pk + 1000, profile_id=other.pk)
    enqueue_on_commit(SEND_TASK, 5, key="notify:5")

    assert sent == [
        ("jobs.tasks.finish_job_task", cluster_queue(credential.profile_id)),
        ("jobs.tasks.finish_job_task", cluster_queue(other.pk)),
        (SEND_TASK, default_queue()),
    ]
    assert cluster_queue(credential.profile_id) != cluster_queue(other.pk)
