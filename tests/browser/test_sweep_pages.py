"""The sweep pages in Chromium: from a template's wizard to "Run as a sweep", the points chosen with a live check
and the preview of the first point and the total cost; create; the sweep's page with its inputs section and its
rows; then, the points run (their states made in the database as the sync would leave them, their energies from
a recorded NAMD log read by the portal's log reader), the rows and a plot of a figure against a swept variable,
another figure and the other variable chosen; an active sweep's rows following the sync until they settle.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from jobs.models import JobState, Sweep
from tests.frontend.sweeps_made import logged, new_sweep, point_jobs, set_points
from tests.jobs.unit_jobs import unit_profile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

C, R, P = JobState.COMPLETED, JobState.RUNNING, JobState.PENDING


def fill(browser, name: str, value: str) -> None:
    field = browser.find(f"[name='{name}']")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(value)


def choose(browser, name: str, value: str) -> None:
    Select(browser.find(f"select[name='{name}']")).select_by_value(value)


def previewed_points(driver) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, "#sweep-preview-total dd[data-points]")
    return found[0].get_attribute("data-points") if found else ""


def test_a_sweep_made_in_the_wizard_shows_its_rows_and_plots_a_figure(browser, member) -> None:
    unit_profile()
    browser.login(member.username)
    browser.visit("/jobs/new/npt-equilibration/")
    browser.find("#run-as-sweep").click()
    browser.wait_visible("#sweep-points")
    assert browser.find("nav[aria-label=Main] a[href='/sweeps/']").is_displayed()
    for axis in "xyz":
        fill(browser, f"var_cell_{axis}", "30")

    # The points: a 3 x 2 grid; the preview counts them and renders the first.
    choose(browser, "axis0_name", "temperature")
    fill(browser, "axis0_values", "300, 310, 320")
    choose(browser, "axis1_name", "cutoff")
    fill(browser, "axis1_values", "10, 12")
    browser.wait_for(lambda d: previewed_points(d) == "6", "6 points in the preview")
    config = browser.find("#wizard-preview-config").get_attribute("textContent")
    assert "temperature        300.0" in config
    assert "Service units" in browser.find("#sweep-preview-total").text

    # A value out of its variable's range: beside its field, with its code; a list of unequal axes: beside them.
    fill(browser, "axis0_values", "300, 5000")
    error = browser.wait_for(lambda d: d.find_element(By.ID, "id_axis0_values_error").text, "the inline error")
    assert "5000: must be between 0 and 1000 K VALUE_OUT_OF_RANGE" in error
    fill(browser, "axis0_values", "300, 310, 320")
    browser.find("#id_mode_1").click()  # list
    axes_error = browser.wait_for(lambda d: d.find_element(By.ID, "id_axis_rows_error").text, "the axes' error")
    assert "SWEEP_AXES_UNEQUAL" in axes_error
    browser.screenshot("sweep-wizard-1-unequal")

    # Replicas ask for their number and a base seed instead of axes.
    browser.find("#id_mode_2").click()
    browser.wait_for(lambda d: not d.find_element(By.ID, "sweep-axes").is_displayed(), "the axes hidden")
    assert browser.find("#sweep-replicas").is_displayed()
    browser.find("#id_mode_0").click()  # back to the grid
    browser.wait_for(lambda d: d.find_element(By.ID, "sweep-axes").is_displayed(), "the axes shown again")
    browser.wait_for(lambda d: d.find_element(By.ID, "id_axis_rows_error").text == "", "the grid is fine")

    # A third variable: its row comes with what was typed kept.
    browser.find("#sweep-add-axis").click()
    browser.wait_visible("select[name='axis2_name']")
    assert browser.find("[name='axis0_values']").get_attribute("value") == "300, 310, 320"
    fill(browser, "title", "water grid")
    fill(browser, "max_running", "2")
    browser.wait_for(lambda d: previewed_points(d) == "6", "the preview again")
    browser.assert_nothing_external()
    browser.screenshot("sweep-wizard-2-preview")
    assert Sweep.objects.count() == 0  # previews create nothing

    browser.find("#wizard-form button[type=submit]").click()
    browser.wait_visible("#sweep-live")
    sweep = Sweep.objects.get()
    assert browser.driver.current_url.endswith(f"/sweeps/{sweep.pk}/")
    assert (sweep.title, sweep.max_running) == ("water grid", 2)
    assert browser.find("#uploads").is_displayed()  # the inputs, uploaded once for every point
    assert browser.find("#inputs-submit").text == "Submit the sweep to SLURM"
    assert len(browser.find_all("tr[data-point]")) == 6
    browser.assert_nothing_external()
    browser.screenshot("sweep-page-1-inputs")

    # The points ran: their rows and the plot of a figure against a swept variable, a line per other value.
    for shift, job in enumerate(set_points(sweep, [C] * 6)):
        logged(job, temperature_shift=float(shift))
    browser.visit(f"/sweeps/{sweep.pk}/")
    rows = browser.find_all("tr[data-point]")
    assert [row.find_element(By.CSS_SELECTOR, "[data-point-state]").text for row in rows] == ["Completed"] * 6
    assert "12.1928" in rows[0].text
    plot = browser.find("#sweep-plot")
    browser.wait_for(lambda d: plot.get_attribute("data-points") == "6", "the plot's six points")
    assert plot.get_attribute("data-series") == "2"  # cutoff 10 and cutoff 12
    assert browser.find("#sweep-plot canvas").is_displayed()
    assert browser.find("#sweep-plot-empty").is_displayed() is False
    assert plot.get_attribute("data-active") == "false"
    Select(browser.find("#sweep-plot-figure")).select_by_value("temperature")
    Select(browser.find("#sweep-plot-axis")).select_by_value("cutoff")
    browser.wait_for(lambda d: plot.get_attribute("data-axis") == "cutoff", "the plot against the cutoff")
    browser.wait_for(lambda d: plot.get_attribute("data-series") == "3", "a line per temperature")
    assert plot.get_attribute("data-figure") == "temperature"
    assert browser.find("#sweep-csv").get_attribute("href").endswith(f"/api/v1/sweeps/{sweep.pk}/csv")
    assert browser.find_all("#uploads") == []  # the inputs were taken: nothing more to upload
    browser.assert_nothing_external()
    browser.screenshot("sweep-page-2-plot")


def test_an_active_sweeps_rows_follow_the_sync_and_stop_polling(browser, member) -> None:
    sweep = new_sweep(member, unit_profile(), max_running=2)
    set_points(sweep, [C, C, R, P, JobState.READY, JobState.READY])
    logged(point_jobs(sweep)[0])
    browser.login(member.username)
    browser.visit(f"/sweeps/{sweep.pk}/")
    assert browser.find("#sweep-live").get_attribute("hx-trigger") == "every 5s"
    assert browser.find("#sweep-plot").get_attribute("data-active") == "true"
    assert browser.find("#sweep-cancel").is_displayed()

    set_points(sweep, [C] * 6)  # as the sync would
    browser.wait_for(lambda d: d.find_element(By.CSS_SELECTOR, "#sweep-state").text.endswith("6 completed"), "done", 20)
    assert browser.find("#sweep-live").get_attribute("hx-trigger") is None  # settled: no more polling
    browser.wait_for(lambda d: d.find_element(By.ID, "sweep-plot").get_attribute("data-active") == "false", "plot")
    assert browser.find_all("#sweep-cancel") == []
    browser.assert_nothing_external()
    browser.screenshot("sweep-page-3-settled")
