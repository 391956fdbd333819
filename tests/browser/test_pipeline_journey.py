"""A member runs the built-in protocol from the browser on the real stack: the protocol wizard, the run's inputs
uploaded once, one submit, and the run's page following its five steps through SLURM to the end.

The live server, a real Celery worker and beat, PostgreSQL, Redis and the local SLURM cluster over sshd. The run's
page is the one the member watches: the step graph reaches "Completed" step by step (the sync moves it; nobody
clicks refresh) and the one energy plot spans every step, a marker where each starts.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from jobs.models import JobState, Pipeline
from jobs.pipeline_steps import current_steps
from tests.jobs.cluster_jobs import FIXTURES, register

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_webpipe"
VALUES = {
    "cell_x": "30",
    "cell_y": "30",
    "cell_z": "30",
    "minimize_steps": "50",
    "run_steps": "100",
    "output_energies": "10",
    "restart_every": "50",
    "dcd_every": "50",
}
INPUT_BY_SUFFIX = {".psf": "water.psf", ".pdb": "water.pdb", ".prm": "par_water.prm", ".par": "par_water.prm"}


@pytest.fixture
def cluster(celery_worker, celery_beat_process):
    return register((MEMBER,))


def fill(browser, name: str, value: str) -> None:
    field = browser.find(f"[name='{name}']")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(value)


def fill_value(browser, name: str, value: str) -> None:
    """The shared field of the value if the wizard asks it once, else every stage's own field (opened first)."""
    if browser.driver.find_elements(By.CSS_SELECTOR, f"[name='shared_{name}']"):
        fill(browser, f"shared_{name}", value)
        return
    fields = [
        field.get_attribute("name")
        for field in browser.driver.find_elements(By.CSS_SELECTOR, f"[name^='stage'][name$='_{name}']")
    ]
    assert fields, f"the wizard asks nothing for {name}"
    for field_name in fields:
        browser.driver.execute_script(
            "document.querySelector(arguments[0]).closest('details').open = true", f"[name='{field_name}']"
        )
        fill(browser, field_name, value)


def test_a_member_runs_the_built_in_protocol_from_the_browser(browser, cluster) -> None:
    (member,) = cluster.members
    browser.login(member.username)

    # 1. The protocol wizard: the values asked once, the preview of all five steps.
    browser.visit("/pipelines/new/min-equil-prod/")
    browser.wait_visible("#wizard-form")
    fill(browser, "title", "Water protocol from the browser")
    Select(browser.find("[name='partition']")).select_by_value("debug")
    fill(browser, "walltime", "00:10:00")
    for name, value in VALUES.items():
        fill_value(browser, name, value)
    browser.wait_for(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "details.pipeline-preview-step[data-problems='0']")) == 5,
        "five steps previewed without a problem",
        30,
    )
    browser.assert_nothing_external()
    browser.screenshot("pipeline-journey-1-wizard")
    browser.find("#wizard-form button[type=submit]").click()

    # 2. The run's inputs, uploaded once to its first step.
    browser.wait_visible("#inputs-pipeline")
    run = Pipeline.objects.get(owner=member)
    steps = current_steps(run)
    assert [step.state for step in steps] == [JobState.DRAFT] * 5
    for file_input in browser.find_all("input[type=file][data-upload-name]"):
        name = file_input.get_attribute("data-upload-name")
        file_input.send_keys(str(FIXTURES / INPUT_BY_SUFFIX[name[name.rfind(".") :]]))
    browser.wait_for(
        lambda d: "ready to submit" in d.find_element(By.ID, "inputs-status").text, "inputs on the cluster", 90
    )
    browser.screenshot("pipeline-journey-2-inputs")

    # 3. One submit queues the whole run; its page follows the steps to the end without a click.
    browser.find("#inputs-submit").click()
    browser.wait_for(lambda d: f"/pipelines/{run.pk}" in d.current_url, "the run's page", 30)
    browser.wait_visible("ol.pipeline-graph")
    browser.screenshot("pipeline-journey-3-submitted")
    browser.wait_for(
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-pipeline-state]").text == "Completed",
        "the run COMPLETED on its page",
        420,
    )
    boxes = browser.find_all("ol.pipeline-graph li.pipeline-step")
    assert all("Completed" in box.text for box in boxes), [box.text for box in boxes]
    steps = current_steps(run)
    assert [step.state for step in steps] == [JobState.COMPLETED] * 5
    assert len({step.slurm_job_id for step in steps}) == 5

    # One energy plot across the five steps, a marker where each starts (the page reloads it when a step ends).
    browser.visit(f"/pipelines/{run.pk}/")
    browser.wait_for(
        lambda d: d.find_element(By.ID, "energy-plot").get_attribute("data-markers") == "5", "five step markers", 60
    )
    assert int(browser.find("#energy-plot").get_attribute("data-points")) > 10
    assert browser.find("#energy-plot canvas").is_displayed()
    browser.assert_nothing_external()
    browser.screenshot("pipeline-journey-4-completed")
