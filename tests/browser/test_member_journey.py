"""A member's whole journey in Chromium on the real stack: the wizard, uploads, SLURM, the plot, a download.

The live server, a real Celery worker and beat, PostgreSQL, Redis and the local SLURM cluster over sshd: the
member logs in, makes a job from the equilibration template (a bad value shows its inline error first), sees the
preview, uploads the inputs in chunks, submits, watches the job reach COMPLETED with its energy plot drawn, and
downloads an output file. A second member cannot open the job. Every page is screenshotted and checked to fetch
nothing from outside the server.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from jobs.models import InputFile, Job, JobState
from tests.jobs.cluster_jobs import CELL, FIXTURES, QUICK, WATER, create_job, register

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBERS = ("np_ci_web1", "np_ci_web2")
# Small and quick: NAMD's stand-in runs these in a few seconds.
VALUES = {
    "run_steps": "200",
    "minimize_steps": "50",
    "output_energies": "10",
    "restart_every": "50",
    "dcd_every": "50",
    "cell_x": "30",
    "cell_y": "30",
    "cell_z": "30",
}
MIB = 2**20
INPUT_BY_SUFFIX = {".psf": "water.psf", ".pdb": "water.pdb", ".prm": "par_water.prm", ".par": "par_water.prm"}


@pytest.fixture
def cluster(celery_worker, celery_beat_process):
    return register(MEMBERS)


def fill(browser, name: str, value: str) -> None:
    field = browser.find(f"[name='{name}']")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(value)


def visit_and_check(browser, path: str, screenshot: str, heading: str) -> None:
    browser.visit(path)
    assert heading in browser.find("h1").text
    browser.assert_nothing_external()
    browser.screenshot(screenshot)


def test_a_member_runs_an_equilibration_from_the_browser(browser, cluster) -> None:
    owner, other = cluster.members
    browser.login(owner.username)
    browser.assert_nothing_external()
    browser.screenshot("dashboard-empty")

    # 1. Choose the template from its card.
    browser.find("nav[aria-label=Main] a[href='/jobs/new/']").click()
    browser.wait_visible(".wizard-cards")
    browser.assert_nothing_external()
    browser.screenshot("wizard-1-templates")
    browser.find("a[href='/jobs/new/npt-equilibration/']").click()
    browser.wait_visible("#wizard-form")

    # 2. A bad value gets its inline error as it is typed; the fixed value clears it.
    fill(browser, "var_run_steps", "-5")
    error = browser.wait_for(lambda d: d.find_element(By.ID, "id_var_run_steps_error").text, "the inline error")
    assert "VALUE_OUT_OF_RANGE" in error
    assert browser.find("[name='var_run_steps']").get_attribute("aria-invalid") == "true"
    browser.screenshot("wizard-2-inline-error")
    fill(browser, "title", "Water box from the browser")
    Select(browser.find("[name='partition']")).select_by_value("debug")
    fill(browser, "walltime", "00:10:00")
    for name, value in VALUES.items():
        fill(browser, f"var_{name}", value)
    browser.wait_for(lambda d: not d.find_element(By.ID, "id_var_run_steps_error").text, "the error to clear")

    # The live preview shows the config with the typed values, the batch script and the cost.
    browser.wait_for(
        lambda d: re.search(r"^run\s+200$", d.find_element(By.ID, "wizard-preview").text, re.M),
        "the preview of run 200",
    )
    preview = browser.find("#wizard-preview").text
    assert "cellBasisVector1" in preview
    assert "#SBATCH --partition=debug" in preview
    assert "Core-hours" in preview
    browser.assert_nothing_external()
    browser.screenshot("wizard-3-form-and-preview")
    browser.find("#wizard-form button[type=submit]").click()

    # 3. Upload the inputs the config reads, in chunks with a progress bar each.
    browser.wait_for(lambda d: "/inputs/" in d.current_url, "the inputs step")
    job = Job.objects.get(owner=owner)
    assert job.state == JobState.DRAFT
    file_inputs = browser.find_all("input[type=file][data-upload-name]")
    assert {Path(i.get_attribute("data-upload-name")).suffix for i in file_inputs} >= {".psf", ".pdb"}
    for file_input in file_inputs:
        source = FIXTURES / INPUT_BY_SUFFIX[Path(file_input.get_attribute("data-upload-name")).suffix]
        file_input.send_keys(str(source))
    browser.wait_for(
        lambda d: "ready to submit" in d.find_element(By.ID, "inputs-status").text, "inputs on the cluster", 90
    )
    bars = browser.find_all("#uploads progress")
    assert bars
    assert all(bar.get_attribute("value") == bar.get_attribute("max") for bar in bars if bar.is_displayed())
    browser.assert_nothing_external()
    browser.screenshot("wizard-4-inputs-ready")

    # 4. Submit, and follow the job on its page until SLURM has run it and the results are back.
    browser.find("#inputs-submit").click()
    browser.wait_for(lambda d: d.current_url.rstrip("/").endswith(f"/jobs/{job.pk}"), "the job page")
    browser.screenshot("job-detail-submitted")
    browser.wait_for(lambda d: "Completed" in d.find_element(By.ID, "job-state").text, "COMPLETED on the page", 300)
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.exit_code == 0

    # The page keeps following the job until its results and the rest of its log are in ("settled"); then the
    # energy plot is drawn from NAMD's ENERGY lines, however short the run was.
    browser.wait_for(lambda d: "Final: the job has ended" in d.find_element(By.ID, "job-status").text, "settled", 120)
    assert Job.objects.get(pk=job.pk).finished_at is not None
    plot = browser.wait_for(
        lambda d: (
            int(d.find_element(By.ID, "energy-plot").get_attribute("data-points") or 0) > 5
            and d.find_element(By.ID, "energy-plot")
        ),
        "the energy plot",
        30,
    )
    assert plot.find_elements(By.CSS_SELECTOR, "canvas")
    browser.assert_nothing_external()
    browser.screenshot("job-detail-completed")
    browser.find("[data-theme-toggle]").click()  # the plot follows the theme
    browser.wait_for(lambda d: d.execute_script("return document.documentElement.dataset.theme"), "a theme")
    browser.screenshot("job-detail-completed-other-theme")
    browser.driver.execute_script("localStorage.removeItem('portal-theme')")

    # 5. Download an output file from the project dir (staged by the worker, then saved by the browser); the
    # files tab listed the folder in place when the job settled, without a reload.
    browser.find("#tab-files").click()
    download = browser.wait_visible("#panel-files button[aria-label='Download out.coor']", 30)
    browser.screenshot("job-detail-files")
    download.click()
    browser.wait_visible("a[data-file='out.coor']", 60).click()
    saved = browser.downloads / "out.coor"
    browser.wait_for(lambda d: saved.exists() and saved.stat().st_size > 0, "out.coor in the downloads folder", 30)
    browser.assert_nothing_external()

    # 6. The other pages, now that there is a job to show.
    visit_and_check(browser, "/", "dashboard", "Dashboard")
    assert "Water box from the browser" in browser.text()
    visit_and_check(browser, "/jobs/", "jobs-list", "Jobs")
    visit_and_check(browser, "/templates/", "templates-catalogue", "Templates")
    visit_and_check(browser, "/templates/npt-equilibration/", "templates-detail", "equilibration")
    visit_and_check(browser, "/clusters/", "clusters", "Clusters")
    browser.driver.find_element(By.XPATH, "//button[normalize-space()='Test connection']").click()
    result = browser.wait_for(
        lambda d: "SLURM answered" in (text := d.find_element(By.TAG_NAME, "main").text) and text, "the test", 60
    )
    assert f"Connected as {owner.username}" in result
    browser.screenshot("clusters-connection-tested")
    visit_and_check(browser, "/activity/", "activity", "Activity")
    assert "sbatch" in browser.text()

    # 7. Another member: the job's page and its parts are not found.
    browser.logout()
    browser.login(other.username)
    for path in (f"/jobs/{job.pk}/", f"/jobs/{job.pk}/status/", f"/jobs/{job.pk}/files/"):
        browser.visit(path)
        assert "Not found" in browser.find("h1").text, path
        assert "Water box from the browser" not in browser.driver.page_source
    browser.visit("/jobs/")
    assert "Water box from the browser" not in browser.text()
    job.refresh_from_db()
    assert job.deleted_at is None


def test_an_interrupted_upload_continues_from_where_the_portal_stopped(browser, cluster, tmp_path) -> None:
    """8 MiB of a 20 MiB file arrived before the connection dropped: the page sends only the other 12 MiB."""
    owner = cluster.members[0]
    client = cluster.client(owner)
    job = create_job(client, cluster.profile, values={**WATER, **CELL, **QUICK, "run_steps": 100})
    data = os.urandom(20 * MIB)
    path = tmp_path / "restraints.dat"
    path.write_bytes(data)
    first = client.put(
        f"/api/v1/jobs/{job['id']}/uploads/{path.name}",
        data=data[: 8 * MIB],
        content_type="application/octet-stream",
        HTTP_CONTENT_RANGE=f"bytes 0-{8 * MIB - 1}/{20 * MIB}",
    )
    assert first.status_code == 200, first.content
    assert first.json()["received"] == 8 * MIB

    browser.login(owner.username)
    browser.visit(f"/jobs/{job['id']}/inputs/")
    # Record the ranges the page sends (WebDriver's script is not bound by the page's CSP).
    browser.driver.execute_script(
        "window.sentRanges = []; const set = XMLHttpRequest.prototype.setRequestHeader;"
        "XMLHttpRequest.prototype.setRequestHeader = function (name, value) {"
        "  if (name === 'Content-Range') window.sentRanges.push(value); return set.call(this, name, value); };"
    )
    browser.find("input[data-upload-other]").send_keys(str(path))
    stored = browser.wait_for(
        lambda d: InputFile.objects.filter(job_id=job["id"], name=path.name).first(), "the upload to finish", 60
    )
    assert stored.size_bytes == 20 * MIB
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert browser.driver.execute_script("return window.sentRanges") == [
        f"bytes {8 * MIB}-{16 * MIB - 1}/{20 * MIB}",
        f"bytes {16 * MIB}-{20 * MIB - 1}/{20 * MIB}",
    ]
    browser.wait_for(lambda d: "restraints.dat received" in d.find_element(By.ID, "uploads").text, "the row's message")
    browser.screenshot("wizard-4-inputs-resumed")
    browser.assert_nothing_external()
