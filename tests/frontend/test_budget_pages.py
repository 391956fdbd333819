"""Budgets on the pages and the API: the previews' budget line (job, pipeline, sweep), a refused submit's code
beside the submit button and in the API's envelope, and `GET /api/v1/budgets` (a member's own, a lab admin's all).
Real PostgreSQL; no cluster is contacted."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounting.models import Budget, BudgetPeriod
from jobs.models import Job, JobState
from tests.accounting.usage_rows import usage_rows
from tests.api.conftest import bearer
from tests.factories import CredentialFactory, SchedulableProfileFactory
from tests.frontend import test_pipeline_pages, test_wizard
from tests.frontend.sweeps_made import sweep_form
from tests.jobs.unit_jobs import new_job

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def budget_lines(page: str) -> list[str]:
    found = re.search(r'<ul class="budget-lines" id="preview-budget">(.*?)</ul>', page, re.S)
    assert found is not None, "no budget lines in the preview"
    return [re.sub(r"<[^>]+>", "", line).strip() for line in re.findall(r"<li[^>]*>(.*?)</li>", found.group(1), re.S)]


def test_the_job_preview_says_what_the_job_would_use_of_what_is_left(member_client, member, profile) -> None:
    Budget.objects.create(member=member, period=BudgetPeriod.MONTH, limit_su=Decimal(40))
    usage_rows(member, profile, 1, ended_at=timezone.now(), service_units="28")
    url = f"{test_wizard.FORM_URL}preview/"
    page = member_client.post(url, test_wizard.filled(profile), **HTMX).content.decode()
    assert budget_lines(page) == ["This would use 0.17 SU of 12.00 SU left this month (member budget)."]
    Budget.objects.create(member=member, period=BudgetPeriod.YEAR, limit_su=Decimal("28.1"), is_hard=True)
    over = member_client.post(url, test_wizard.filled(profile), **HTMX).content.decode()
    assert budget_lines(over)[1] == (
        "BUDGET_EXCEEDED This would use 0.17 SU of 0.10 SU left this year (member budget). "
        "That goes over the limit of 28.10 SU: it will be refused."
    )
    assert 'data-over="true" data-hard="true"' in over


def test_a_preview_without_budgets_shows_no_budget_line(member_client, profile) -> None:
    page = member_client.post(f"{test_wizard.FORM_URL}preview/", test_wizard.filled(profile), **HTMX).content.decode()
    assert "preview-budget" not in page


def test_the_pipeline_preview_sets_every_step_against_the_budget(member_client, member, profile) -> None:
    Budget.objects.create(member=member, period=BudgetPeriod.QUARTER, limit_su=Decimal("0.5"))
    url = f"{test_pipeline_pages.FORM_URL}preview/"
    page = member_client.post(url, test_pipeline_pages.filled(profile), **HTMX).content.decode()
    total = re.search(r"<dt>Service units</dt><dd>([0-9.]+)</dd>", page).group(1)
    assert budget_lines(page) == [
        f"BUDGET_WARNING This would use {Decimal(total):.2f} SU of 0.50 SU left this quarter (member budget). "
        "That goes over the limit of 0.50 SU: it may still be submitted."
    ]


def test_the_sweep_preview_sets_every_point_against_the_budget(member_client, member, profile) -> None:
    Budget.objects.create(member=member, period=BudgetPeriod.MONTH, limit_su=Decimal(100))
    page = member_client.post("/sweeps/new/template/npt-equilibration/preview/", sweep_form(profile), **HTMX)
    text = page.content.decode()
    total = re.search(r'id="sweep-preview-total">.*?<dt>Service units</dt><dd>([0-9.]+)</dd>', text, re.S).group(1)
    assert budget_lines(text) == [
        f"This would use {Decimal(total):.2f} SU of 100.00 SU left this month (member budget)."
    ]


def ready_job_with_credential(member, profile) -> Job:
    CredentialFactory(user=member, profile=profile)
    job = new_job(member, profile)
    Job.objects.filter(pk=job.pk).update(state=JobState.READY)
    return job


def test_a_refused_submit_shows_its_code_beside_the_submit_button(member_client, member, profile) -> None:
    job = ready_job_with_credential(member, profile)
    Budget.objects.create(member=member, period=BudgetPeriod.MONTH, limit_su=Decimal("0.01"), is_hard=True)
    response = member_client.post(f"/jobs/{job.pk}/submit/", follow=True)
    assert response.redirect_chain[-1][0] == f"/jobs/{job.pk}/inputs/"
    page = response.content.decode()
    assert re.search(
        r"This job would use 0\.17 SU but 0\.01 SU of 0\.01 SU are left this month .*\(BUDGET_EXCEEDED\)", page
    )
    assert Job.objects.get(pk=job.pk).state == JobState.READY


def test_the_api_refuses_a_submit_over_a_hard_budget_with_the_envelope(member, profile) -> None:
    job = ready_job_with_credential(member, profile)
    budget = Budget.objects.create(member=member, period=BudgetPeriod.MONTH, limit_su=Decimal("0.01"), is_hard=True)
    response = Client().post(f"/api/v1/jobs/{job.pk}/submit", **bearer(member))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "BUDGET_EXCEEDED"
    assert (error["details"]["budget_id"], error["details"]["limit_su"]) == (budget.pk, "0.0100")
    assert error["details"]["used_su"] == "0"
    assert Decimal(error["details"]["estimate_su"]) > Decimal("0.01")


def test_the_budgets_api_gives_a_member_theirs_and_a_lab_admin_all(member, other_member, lab_admin) -> None:
    profile = SchedulableProfileFactory()
    usage_rows(member, profile, 1, ended_at=timezone.now(), service_units="6", account="chem")
    own = Budget.objects.create(member=member, period=BudgetPeriod.MONTH, limit_su=Decimal(10), is_hard=True)
    chem = Budget.objects.create(account="chem", period=BudgetPeriod.YEAR, limit_su=Decimal(24))
    others = Budget.objects.create(member=other_member, period=BudgetPeriod.MONTH, limit_su=Decimal(5))
    Budget.objects.create(account="bio", period=BudgetPeriod.MONTH, limit_su=Decimal(5))
    mine = Client().get("/api/v1/budgets", **bearer(member)).json()
    assert [(item["id"], item["scope"]) for item in mine] == [
        (own.pk, "member budget"),
        (chem.pk, "account budget (chem)"),
    ]
    assert (mine[0]["used_su"], mine[0]["remaining_su"], mine[0]["fraction"], mine[0]["is_hard"]) == (
        "6.0000",
        "4.0000",
        0.6,
        True,
    )
    assert (mine[1]["used_su"], mine[1]["remaining_su"], mine[1]["fraction"]) == ("6.0000", "18.0000", 0.25)
    assert mine[0]["window_start"] == timezone.localdate().replace(day=1).isoformat()
    everyone = Client().get("/api/v1/budgets", **bearer(lab_admin)).json()
    assert len(everyone) == 4
    assert others.pk in {item["id"] for item in everyone}
    assert Client().get("/api/v1/budgets", **bearer(other_member)).json()[0]["member"] == "bob_t"
