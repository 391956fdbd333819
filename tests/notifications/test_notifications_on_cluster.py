"""Notifications end to end on the local SLURM cluster, through the API and a real Celery worker: a member with
email and a webhook gets ONE mail (read from the real local SMTP server's store) and ONE webhook call (a real local
HTTP server, its host allowed by the admin allow-list) when a job ends, and ONE digest when a sweep of 2 points ends."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from clusters.models import LaunchRecipe
from jobs.models import Job
from notifications.models import Delivery, Notification, WebhookHostAllowance
from tests.jobs.cluster_jobs import (
    CELL,
    QUICK,
    WATER,
    create_job,
    register,
    template_id,
    upload_inputs,
    wait_for,
    wait_for_state,
    wait_until_finished,
)
from tests.notifications.mail_store import mails_to, require_local_smtp
from tests.notifications.receivers import webhook_receiver

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_notify"
FAST_RECIPE = {
    "name": "CPU: stand-in unpaced",
    "kind": LaunchRecipe.Kind.CPU,
    "command": "NAMD_STANDIN_STEPS_PER_SECOND=0 srun namd3 +p{cores} {config}",
}


@pytest.fixture
def setup(celery_worker):
    require_local_smtp()
    setup = register((MEMBER,))
    LaunchRecipe.objects.create(profile=setup.profile, **FAST_RECIPE)
    return setup


def wants_mail_and_webhook(member) -> str:
    """The member's preferences saved through the API; their unique address (the SMTP store is shared)."""
    address = f"{MEMBER}-{uuid.uuid4().hex[:10]}@example.org"
    member.email = address
    member.save(update_fields=["email"])
    WebhookHostAllowance.objects.create(host="127.0.0.1", allow_http=True, note="the test's webhook receiver")
    return address


def save_preferences(client, webhook_url: str) -> None:
    response = client.put(
        "/api/v1/notifications/preferences",
        {"email_enabled": True, "webhook_url": webhook_url, "events": ["job_completed", "job_failed", "run_ended"]},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content


def wait_sent(notification: Notification) -> None:
    wait_for(
        lambda: set(Delivery.objects.filter(notification=notification).values_list("state", flat=True)) == {"sent"},
        timeout_s=60,
        what="both deliveries sent",
    )


def test_a_job_that_ends_sends_one_mail_and_one_webhook_call(setup) -> None:
    member = setup.members[0]
    client = setup.client(member)
    with webhook_receiver() as receiver:
        address = wants_mail_and_webhook(member)
        save_preferences(client, receiver.url)
        created = create_job(client, setup.profile, values={**WATER, **QUICK, **CELL, "run_steps": 100})
        job_id = created["id"]
        upload_inputs(client, job_id)
        wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "READY", timeout_s=60, what="READY")
        assert client.post(f"/api/v1/jobs/{job_id}/submit").status_code == 202
        assert wait_for_state(client, job_id, {"COMPLETED", "FAILED"})["state"] == "COMPLETED"
        wait_until_finished(client, job_id)
        told = wait_for(lambda: Notification.objects.filter(recipient=member).first(), timeout_s=30, what="a note")
        wait_sent(told)
        (mail,) = mails_to(address)
        (call,) = receiver.calls

    assert told.event == "job_completed"
    assert mail["Subject"] == f"Job completed: {created['title']}"
    body = mail.get_payload(decode=True).decode()
    assert f"/jobs/{job_id}/" in body
    assert "download them from the job's page" in body
    assert call["json"]["event"] == "job_completed"
    assert call["json"]["fields"]["job_id"] == job_id
    assert call["json"]["text"].startswith(f"*Job completed: {created['title']}*")
    assert mail["X-Portal-Idempotency-Key"] == call["headers"]["X-Portal-Idempotency-Key"]
    assert Notification.objects.filter(recipient=member).count() == 1


def test_a_sweep_of_two_points_sends_one_digest(setup) -> None:
    member = setup.members[0]
    client = setup.client(member)
    with webhook_receiver() as receiver:
        address = wants_mail_and_webhook(member)
        save_preferences(client, receiver.url)
        created = client.post(
            "/api/v1/sweeps",
            {
                "template_id": template_id("npt-equilibration"),
                "cluster_id": setup.profile.pk,
                "recipe": FAST_RECIPE["name"],
                "title": "water pair",
                "mode": "list",
                "axes": [{"name": "temperature", "values": [300, 310]}],
                "values": {**WATER, **QUICK, **CELL, "run_steps": 100, "output_name": "eq"},
                "resources": {"partition": "debug", "walltime_s": 600},
            },
            content_type="application/json",
        )
        assert created.status_code == 201, created.content
        sweep_id = created.json()["id"]
        upload_inputs(client, created.json()["inputs_job_id"])

        def detail() -> dict[str, Any]:
            return client.get(f"/api/v1/sweeps/{sweep_id}").json()

        wait_for(lambda: all(r["state"] == "READY" for r in detail()["rows"]), timeout_s=120, what="points READY")
        assert client.post(f"/api/v1/sweeps/{sweep_id}/submit").status_code == 202

        def all_finished() -> bool:
            jobs = Job.objects.filter(sweep_point__sweep_id=sweep_id)
            if all(job.finished_at is not None for job in jobs):
                return True
            client.post("/api/v1/jobs/refresh")
            return False

        wait_for(all_finished, timeout_s=300, what="both points finished", every_s=1.0)
        digest = wait_for(lambda: Notification.objects.filter(recipient=member).first(), timeout_s=30, what="digest")
        wait_sent(digest)
        mails = mails_to(address)
        calls = list(receiver.calls)

    assert Notification.objects.filter(recipient=member).count() == 1  # no point told on its own
    assert digest.event == "run_ended"
    assert digest.text.startswith("The sweep “water pair” completed: 2 points, 2 completed.")
    assert [mail["Subject"] for mail in mails] == ["Sweep completed: water pair"]
    assert [call["json"]["fields"]["sweep_id"] for call in calls] == [sweep_id]
