"""Budgets in Chromium: the job wizard's live preview says what the job would use of what is left (and warns when
it would go over a hard budget), and a submit refused by that budget comes back with its code on the inputs page.
No cluster is contacted (the refusal comes before any task)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from accounting.models import Budget, BudgetPeriod
from jobs.models import Job, JobState
from tests.accounting.usage_rows import usage_rows
from tests.factories import CredentialFactory, InputFileFactory
from tests.jobs.unit_jobs import new_job, unit_profile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fill(browser, name: str, value: str) -> None:
    field = browser.find(f"[name='{name}']")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(value)


def budget_text(driver) -> str:
    found = driver.find_elements(By.ID, "preview-budget")
    return found[0].text if found else ""


def test_the_preview_shows_the_budget_line_and_a_refused_submit_its_code(browser, member) -> None:
    profile = unit_profile()
    usage_rows(member, profile, 1, ended_at=timezone.now(), service_units="39.9")
    Budget.objects.create(member=member, period=BudgetPeriod.MONTH, limit_su=Decimal(40), is_hard=True)
    browser.login(member.username)
    browser.visit("/jobs/new/npt-equilibration/")
    for axis in "xyz":
        fill(browser, f"var_cell_{axis}", "30")
    fill(browser, "walltime", "00:10:00")
    browser.wait_for(lambda d: "use 0.17 SU" in budget_text(d), "the budget line of a 10-minute job")
    line = budget_text(browser.driver)
    assert line.startswith("BUDGET_EXCEEDED This would use 0.17 SU of 0.10 SU left this month (member budget).")
    assert line.endswith("it will be refused.")
    assert browser.find("#preview-budget li").get_attribute("data-hard") == "true"
    browser.assert_nothing_external()
    browser.screenshot("budget-preview-over")

    fill(browser, "walltime", "00:03:00")  # 0.05 SU: within what is left
    browser.wait_for(lambda d: "0.05 SU of 0.10 SU" in budget_text(d), "the line for a shorter job")
    assert "BUDGET_EXCEEDED" not in budget_text(browser.driver)

    CredentialFactory(user=member, profile=profile)
    job = new_job(member, profile)
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        InputFileFactory(job=job, name=name, on_cluster=True)
    Job.objects.filter(pk=job.pk).update(state=JobState.READY)
    browser.visit(f"/jobs/{job.pk}/inputs/")
    browser.find("#inputs-submit").click()
    notice = browser.wait_for(
        lambda d: [p.text for p in d.find_elements(By.CSS_SELECTOR, "p.notice") if "BUDGET_EXCEEDED" in p.text],
        "the refusal with its code",
    )
    assert notice[0].startswith("This job would use 0.17 SU but 0.10 SU of 40.00 SU are left this month")
    assert Job.objects.get(pk=job.pk).state == JobState.READY
    browser.assert_nothing_external()
    browser.screenshot("budget-submit-refused")
