"""The jobs list in Chromium: active rows update in place, ticks survive the update, polling stops when done."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from jobs.models import Job, JobState
from tests.jobs.unit_jobs import new_job, unit_profile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_active_row_updates_in_place_and_keeps_its_tick(browser, member) -> None:
    profile = unit_profile()
    running = new_job(member, profile, title="running one")
    Job.objects.filter(pk=running.pk).update(state=JobState.RUNNING, slurm_job_id="4242")
    new_job(member, profile, title="a draft")
    browser.login(member.username)
    browser.visit("/jobs/")
    assert browser.find("#job-rows").get_attribute("hx-trigger") == "every 5s"
    browser.find(f"#job-select-{running.pk}").click()
    assert browser.find("[data-selected-count]").text == "1 job selected"

    Job.objects.filter(pk=running.pk).update(state=JobState.COMPLETED)  # as the sync would
    badge = f"#job-row-{running.pk} .badge"
    browser.wait_for(lambda d: d.find_element(By.CSS_SELECTOR, badge).text == "Completed", "the row to update", 15)
    assert browser.find(f"#job-select-{running.pk}").is_selected()
    assert browser.find("[data-selected-count]").text == "1 job selected"
    assert browser.find("#job-rows").get_attribute("hx-trigger") is None  # nothing active: no more polling
    browser.assert_nothing_external()
    browser.screenshot("jobs-list-selection")
