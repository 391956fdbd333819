"""Budgets on the local SLURM cluster through a real worker: a real job goes past a tiny soft budget (noted on
the job), its accounting crosses 80 % and 100 % and the member gets each mail once (read from the real local SMTP
server's store); once an admin makes the budget hard, the next submit is refused with BUDGET_EXCEEDED."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from accounting.models import Budget, BudgetPeriod, JobUsage
from jobs.models import JobEvent
from notifications.models import Delivery, Event, NotificationPreference
from tests.accounting.cluster_usage import run_jobs_to_their_end, sweep_as_beat_would
from tests.jobs.cluster_jobs import CELL, QUICK, WATER, create_job, register, upload_inputs, wait_for
from tests.notifications.mail_store import mails_to, require_local_smtp

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_budget"


@pytest.fixture
def setup(celery_worker):
    require_local_smtp()
    return register((MEMBER,))


def test_a_real_jobs_accounting_crosses_a_tiny_budget_mails_once_and_a_hard_one_refuses_the_next(setup) -> None:
    member = setup.members[0]
    address = f"{MEMBER}-{uuid.uuid4().hex[:10]}@example.org"  # the SMTP store is shared between runs
    member.email = address
    member.save(update_fields=["email"])
    NotificationPreference.objects.create(user=member, email_enabled=True, events=[Event.BUDGET_REACHED])
    budget = Budget.objects.create(member=member, period=BudgetPeriod.MONTH, limit_su=Decimal("0.0001"))
    client = setup.client(member)

    # long enough (a few seconds) that SLURM's CPU time charges more than the budget's 0.0001 SU
    (finished,) = run_jobs_to_their_end(client, setup.profile, cpus=(1,), run_steps=4000)
    warning = JobEvent.objects.get(job_id=finished["id"], kind="BUDGET_WARNING")
    assert "(member budget)" in warning.detail

    def usage() -> JobUsage | None:
        found = JobUsage.objects.filter(job_id=finished["id"]).first()
        if found is None:
            sweep_as_beat_would()
        return found

    row = wait_for(usage, timeout_s=90, what="the job's usage row", every_s=2.0)
    assert row.service_units > budget.limit_su
    wait_for(
        lambda: Delivery.objects.filter(notification__recipient=member, state=Delivery.State.SENT).count() == 2,
        timeout_s=60,
        what="the 80 % and 100 % mails sent",
    )
    mails = mails_to(address)
    assert sorted(mail["Subject"] for mail in mails) == [
        "Budget at 100 %: member budget",
        "Budget at 80 %: member budget",
    ]
    body = next(mail for mail in mails if "100 %" in mail["Subject"]).get_payload(decode=True).decode()
    assert f"{row.service_units:.2f} SU of {MEMBER}'s 0.00 SU budget are used this month" in body
    assert "/usage/" in body

    Budget.objects.filter(pk=budget.pk).update(is_hard=True)  # the admin's change
    created = create_job(client, setup.profile, values={**WATER, **QUICK, **CELL, "run_steps": 200, "output_name": "b"})
    upload_inputs(client, created["id"])
    wait_for(lambda: client.get(f"/api/v1/jobs/{created['id']}").json()["state"] == "READY", timeout_s=60, what="READY")
    refused = client.post(f"/api/v1/jobs/{created['id']}/submit")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "BUDGET_EXCEEDED"
    assert (error["details"]["budget_id"], error["details"]["used_su"]) == (budget.pk, str(row.service_units))
    assert client.get(f"/api/v1/jobs/{created['id']}").json()["state"] == "READY"
    assert len(mails_to(address)) == 2  # nothing told twice
