"""Task orders: nothing asked for is lost to a broker that is down, a cluster that is down postpones instead of
failing, a run whose worker died is sent again, and a run that lost its order stops before sbatch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from accounts.services import create_api_token
from clusters import ssh as transport
from jobs import services
from jobs.models import Job, JobState
from jobs.services.readiness import start_submission
from jobs.tasks import submit_job_task
from portal import task_orders
from portal.celery import app as celery_app
from portal.enqueue import enqueue_on_commit
from portal.models import TaskOrder
from portal.queues import default_queue
from portal.task_orders import Claim, OrderLost, current_claim
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def submitting_job(credential) -> tuple[Job, TaskOrder]:
    job = JobFactory(owner=credential.user, profile=credential.profile, ready=True)
    start_submission(job, actor_id=job.owner_id, source="user")
    return job, TaskOrder.objects.get()


def deliver(order: TaskOrder) -> None:
    submit_job_task.apply(args=order.args, task_id=order.task_id)


@pytest.mark.django_db(transaction=True)
def test_an_order_made_while_the_broker_is_down_is_kept_and_sent_by_the_sweep(monkeypatch) -> None:
    sent = []

    def broker_down(name, args, **options):
        raise OperationalError("Error 111 connecting to 127.0.0.1:56379. Connection refused.")

    monkeypatch.setattr(celery_app, "send_task", broker_down)
    task_id = enqueue_on_commit("jobs.tasks.list_job_files_task", 7, 8)  # no exception reaches the caller
    order = TaskOrder.objects.get(task_id=task_id)
    assert order.lease_until <= timezone.now()  # due at once: the next sweep sends it

    monkeypatch.setattr(celery_app, "send_task", lambda name, args, **options: sent.append((name, args, options)))
    assert task_orders.dispatch_due_orders() == 1
    options = {"task_id": task_id, "countdown": None, "queue": default_queue()}
    assert sent == [("jobs.tasks.list_job_files_task", (7, 8), options)]
    assert task_orders.dispatch_due_orders() == 0  # sent: not again before its grace runs out


def test_a_submit_request_while_the_broker_is_down_is_accepted_and_the_job_waits(
    api_client, credential, monkeypatch
) -> None:
    def broker_down(name, args, **options):
        raise OperationalError("Connection refused.")

    monkeypatch.setattr(celery_app, "send_task", broker_down)
    monkeypatch.setattr("django.db.transaction.on_commit", lambda callback, using=None, robust=False: callback())
    job = JobFactory(owner=credential.user, profile=credential.profile, ready=True)
    token = create_api_token(user=credential.user, name="t", expires_in_days=1)
    response = api_client.post(f"/api/v1/jobs/{job.pk}/submit", HTTP_AUTHORIZATION=f"Bearer {token.secret}")
    assert response.status_code == 202, response.content
    assert Job.objects.get(pk=job.pk).state == JobState.SUBMITTING
    assert TaskOrder.objects.filter(task_name="jobs.tasks.submit_job_task", args=[job.pk, job.owner_id]).exists()


def test_orders_with_one_key_are_one_while_open() -> None:
    first = enqueue_on_commit("jobs.tasks.finish_job_task", 5, key="finish:5")
    assert enqueue_on_commit("jobs.tasks.finish_job_task", 5, key="finish:5") == first
    TaskOrder.objects.filter(task_id=first).update(done_at=timezone.now(), state=TaskOrder.State.DONE)
    assert enqueue_on_commit("jobs.tasks.finish_job_task", 5, key="finish:5") != first


def test_a_cluster_that_does_not_answer_postpones_the_submission_and_says_until_when(
    fake_cluster, credential, sent_tasks
) -> None:
    job, order = submitting_job(credential)
    fake_cluster.fail("mkdir", transport.Unreachable("connection refused"))
    deliver(order)
    waiting = Job.objects.get(pk=job.pk)
    assert (waiting.state, waiting.error_code) == (JobState.SUBMITTING, "UNREACHABLE")
    assert "keeps trying until" in waiting.error_message
    order.refresh_from_db()
    assert order.state == TaskOrder.State.QUEUED
    assert order.lease_until > timezone.now()

    fake_cluster.scheduler.answer_sbatch("sbatch_ok_run1.txt")  # the cluster is back
    TaskOrder.objects.update(lease_until=timezone.now())
    assert task_orders.dispatch_due_orders() == 1
    deliver(order)
    submitted = Job.objects.get(pk=job.pk)
    assert (submitted.state, submitted.slurm_job_id, submitted.error_code) == (JobState.PENDING, "54", "")
    assert TaskOrder.objects.get(pk=order.pk).state == TaskOrder.State.DONE


def test_a_cluster_silent_past_the_patience_puts_the_job_back_to_ready(fake_cluster, credential, sent_tasks) -> None:
    job, order = submitting_job(credential)
    fake_cluster.fail("mkdir", transport.Unreachable("connection refused"))
    deliver(order)
    TaskOrder.objects.update(give_up_at=timezone.now(), lease_until=timezone.now())
    task_orders.dispatch_due_orders()
    fake_cluster.fail("mkdir", transport.Unreachable("connection refused"))
    deliver(order)
    gave_up = Job.objects.get(pk=job.pk)
    assert (gave_up.state, gave_up.error_code) == (JobState.READY, "UNREACHABLE")
    assert TaskOrder.objects.get(pk=order.pk).state == TaskOrder.State.GAVE_UP


def test_a_bug_gives_up_at_once_with_an_internal_error(fake_cluster, credential, sent_tasks, monkeypatch) -> None:
    job, order = submitting_job(credential)
    monkeypatch.setattr(services.submission, "check_config", lambda *a, **k: {}["a bug"])
    deliver(order)
    assert Job.objects.get(pk=job.pk).error_code == "INTERNAL_ERROR"
    assert TaskOrder.objects.get(pk=order.pk).state == TaskOrder.State.GAVE_UP


def test_an_order_whose_runs_keep_dying_is_given_up_and_the_job_says_so(credential, sent_tasks) -> None:
    job, order = submitting_job(credential)
    TaskOrder.objects.update(
        state=TaskOrder.State.RUNNING,
        interruptions=task_orders.MAX_INTERRUPTIONS - 1,
        lease_until=timezone.now() - timedelta(seconds=1),
    )
    sent_tasks.clear()
    assert task_orders.dispatch_due_orders() == 0
    assert sent_tasks == []
    stopped = Job.objects.get(pk=job.pk)
    assert (stopped.state, stopped.error_code) == (JobState.READY, "TASK_INTERRUPTED")
    assert TaskOrder.objects.get(pk=order.pk).state == TaskOrder.State.GAVE_UP


def test_a_run_that_lost_its_order_stops_before_sbatch(fake_cluster, credential, sent_tasks) -> None:
    job, order = submitting_job(credential)
    fake_cluster.scheduler.answer_sbatch("sbatch_ok_run1.txt")
    taken_over = Claim(order_id=order.pk, token="not-this-run", runs=1, give_up_at=timezone.now())
    context_token = current_claim.set(taken_over)
    try:
        with pytest.raises(OrderLost):
            services.submit_job(job_id=job.pk, acting_user_id=job.owner_id)
    finally:
        current_claim.reset(context_token)
    assert fake_cluster.scheduler.accepted == []
    assert Job.objects.get(pk=job.pk).state == JobState.SUBMITTING


def test_done_orders_are_pruned_after_a_week() -> None:
    task_id = enqueue_on_commit("jobs.tasks.fetch_logs_task", 1, 2)
    TaskOrder.objects.filter(task_id=task_id).update(
        state=TaskOrder.State.DONE, done_at=timezone.now() - task_orders.KEEP_DONE - timedelta(minutes=1)
    )
    task_orders.dispatch_due_orders()
    assert not TaskOrder.objects.filter(task_id=task_id).exists()


def test_a_sweep_that_finds_the_broker_away_stops_and_keeps_the_orders_due(monkeypatch) -> None:
    attempts = []

    def broker_down(name, args, **options):
        attempts.append(name)
        raise OperationalError("Connection refused.")

    for job_id in (1, 2, 3):
        enqueue_on_commit("jobs.tasks.fetch_logs_task", job_id, 9)
    TaskOrder.objects.update(lease_until=timezone.now())
    monkeypatch.setattr(celery_app, "send_task", broker_down)
    assert task_orders.dispatch_due_orders() == 0
    assert len(attempts) == 1  # one refused send is enough to know: the others wait for the next sweep
    assert TaskOrder.objects.filter(lease_until__lte=timezone.now()).count() == 3
