"""The pipeline pages in Chromium: the protocol wizard with its live preview of every step, then create; a run's
page with its step graph, the steps cut off by a failed one, one energy plot across the steps (uPlot's canvas,
with a marker where each job starts), its actions and resume; an active run's graph following the sync.

The runs' states are made in the database as the sync would leave them (no cluster is needed to draw them); the
energies are NAMD logs the stand-in engine wrote (tests/fixtures/namd/logs), read by the portal's log reader.
"""

from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from jobs.models import JobProgress, JobState, Pipeline
from jobs.namd_log import LogProgress
from jobs.pipeline_steps import current_steps
from tests.frontend.pipeline_runs import new_run, set_steps
from tests.jobs.unit_jobs import FIXTURES, unit_profile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOGS = FIXTURES / "logs"
C, F, X, R, P = JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.RUNNING, JobState.PENDING


def fill(browser, name: str, value: str) -> None:
    field = browser.find(f"[name='{name}']")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(value)


def logged(job, log_name: str) -> None:
    """The step's log as the sync reads it: a recorded NAMD log fed to the portal's reader."""
    log = LogProgress()
    log.feed((LOGS / log_name).read_bytes())
    JobProgress.objects.update_or_create(job=job, defaults={"log_state": log.to_state()})


def preview_text(browser) -> str:
    return browser.find("#wizard-preview").text


def test_the_protocol_wizard_previews_every_step_and_creates_the_run(browser, member) -> None:
    unit_profile()
    browser.login(member.username)
    browser.find("nav[aria-label=Main] a[href='/pipelines/']").click()
    browser.wait_visible("#pipelines-heading")
    browser.find("a[href='/pipelines/new/']").click()
    browser.wait_visible(".wizard-cards")
    browser.assert_nothing_external()
    browser.screenshot("pipeline-wizard-1-protocols")
    browser.find("a[href='/pipelines/new/min-equil-prod/']").click()
    browser.wait_visible("#wizard-form")

    # The preview comes by itself: five steps and the total cost.
    browser.wait_for(lambda d: len(d.find_elements(By.CSS_SELECTOR, "details.pipeline-preview-step")) == 5, "5 steps")
    assert "Total cost estimate" in preview_text(browser)
    for axis in "xyz":
        fill(browser, f"shared_cell_{axis}", "30")

    # A value given once reaches every step that has it.
    fill(browser, "shared_temperature", "310")
    browser.wait_for(
        lambda d: (
            "langevinTemp       310" in d.find_element(By.ID, "preview-step-5-config").get_attribute("textContent")
        ),
        "the last step's config to follow the shared value",
    )

    # A bad per-stage value: its inline error, and the problem with its code on the steps of that stage only.
    browser.find("#stage-values-3 summary").click()
    fill(browser, "stage3_run_steps", "0")
    error = browser.wait_for(lambda d: d.find_element(By.ID, "id_stage3_run_steps_error").text, "the inline error")
    assert "VALUE_OUT_OF_RANGE" in error
    browser.wait_for(
        lambda d: d.find_element(By.ID, "preview-step-3").get_attribute("data-problems") == "1",
        "step 3's problem in the preview",
    )
    assert browser.find("#preview-step-3").get_attribute("open") is not None
    assert "VALUE_OUT_OF_RANGE" in browser.find("#preview-step-3-problems").text
    assert browser.find("#preview-step-2").get_attribute("data-problems") == "0"
    browser.screenshot("pipeline-wizard-2-preview-problem")
    assert Pipeline.objects.count() == 0  # previews create nothing

    # Fixed: an opened step stays open as the preview follows the typing.
    fill(browser, "stage3_run_steps", "200")
    browser.wait_for(lambda d: d.find_element(By.ID, "preview-step-3").get_attribute("data-problems") == "0", "the fix")
    browser.find("#preview-step-1 summary").click()
    fill(browser, "title", "water run")
    browser.wait_for(
        lambda d: "-water-run" in d.find_element(By.ID, "preview-step-1-script").get_attribute("textContent"),
        "the job name to follow the title",
    )
    browser.wait_for(lambda d: d.find_element(By.ID, "preview-step-1").get_attribute("open") is not None, "kept open")
    browser.assert_nothing_external()
    browser.screenshot("pipeline-wizard-2-preview")

    browser.find("#wizard-form button[type=submit]").click()
    browser.wait_visible("#inputs-pipeline")
    pipeline = Pipeline.objects.get()
    first = current_steps(pipeline)[0]
    assert browser.driver.current_url.endswith(f"/jobs/{first.pk}/inputs/")
    assert "Inputs of the run “water run”" in browser.find("h1").text
    assert browser.find("#inputs-submit").text == "Submit the run to SLURM"
    assert pipeline.values["temperature"] == 310.0
    assert pipeline.stage_values == {"3": {"run_steps": 200}}
    browser.assert_nothing_external()
    browser.screenshot("pipeline-wizard-3-inputs")


def test_a_failed_runs_page_shows_its_graph_its_plot_and_resumes(browser, member) -> None:
    run = new_run(member, unit_profile(), title="water run")
    steps = set_steps(run, [C, F, X, X, X])
    logged(steps[0], "namd2_minimize.log")
    logged(steps[1], "namd2_npt_pme.log")
    browser.login(member.username)
    browser.visit(f"/pipelines/{run.pk}/")

    boxes = browser.find_all("ol.pipeline-graph li.pipeline-step")
    assert [box.get_attribute("data-step") for box in boxes] == ["1", "2", "3", "4", "5"]
    assert "Completed" in boxes[0].text
    assert "Failed" in boxes[1].text
    assert [box.find_element(By.CSS_SELECTOR, "[data-not-run]").text for box in boxes[2:]] == [
        "Not run: step 2 failed"
    ] * 3
    assert browser.find("[data-pipeline-state]").text == "Failed"

    # One plot across both logs: uPlot's canvas, the points of both, a marker where each job starts.
    browser.wait_for(lambda d: int(d.find_element(By.ID, "energy-plot").get_attribute("data-points")) > 0, "the plot")
    assert browser.find("#energy-plot canvas").is_displayed()
    assert browser.find("#energy-plot").get_attribute("data-markers") == "2"  # steps 1 and 2 printed energies
    assert browser.find("#energy-empty").is_displayed() is False
    assert browser.find("#energy-plot").get_attribute("data-active") == "false"

    actions = browser.find("#pipeline-actions")
    assert {button.text for button in actions.find_elements(By.CSS_SELECTOR, "button, a.button")} == {
        "Resume from step 2…",
        "Clone",
    }
    browser.assert_nothing_external()
    browser.screenshot("pipeline-page-failed")

    # Resume with a changed value: new jobs from step 2 on, and the run's inputs page to fix a file and submit.
    browser.find("#pipeline-resume").click()
    browser.wait_visible("#resume-submit")
    fill(browser, "shared_temperature", "305")
    browser.screenshot("pipeline-resume")
    browser.find("#resume-submit").click()
    browser.wait_visible("#inputs-pipeline")
    resumed = current_steps(run)
    assert resumed[1].pk != steps[1].pk
    assert browser.driver.current_url.endswith(f"/jobs/{resumed[1].pk}/inputs/")
    assert re.search(r"Resumed from step 2", browser.text()) is not None
    browser.visit(f"/pipelines/{run.pk}/")
    assert len(browser.find_all("table.pipeline-timeline tbody tr")) == 9  # 5 first, 4 resumed
    assert browser.find("[data-pipeline-state]").text == "Draft"
    browser.assert_nothing_external()


def test_an_active_runs_graph_follows_the_sync_and_stops_polling(browser, member) -> None:
    run = new_run(member, unit_profile())
    steps = set_steps(run, [C, R, P, P, P])
    logged(steps[0], "namd2_minimize.log")
    browser.login(member.username)
    browser.visit(f"/pipelines/{run.pk}/")
    assert browser.find("#pipeline-live").get_attribute("hx-trigger") == "every 5s"
    assert browser.find("#pipeline-cancel").is_displayed()
    browser.wait_for(lambda d: int(d.find_element(By.ID, "energy-plot").get_attribute("data-points")) > 0, "the plot")

    set_steps(run, [C, C, C, C, C])  # as the sync would
    browser.wait_for(lambda d: d.find_element(By.CSS_SELECTOR, "[data-pipeline-state]").text == "Completed", "done", 20)
    assert [box.text.split("\n")[2] for box in browser.find_all("li.pipeline-step")] == ["Completed"] * 5
    assert browser.find("#pipeline-live").get_attribute("hx-trigger") is None  # settled: no more polling
    browser.wait_for(lambda d: d.find_element(By.ID, "energy-plot").get_attribute("data-active") == "false", "plot")
    assert browser.find_all("#pipeline-cancel") == []
    browser.assert_nothing_external()
    browser.screenshot("pipeline-page-completed")
