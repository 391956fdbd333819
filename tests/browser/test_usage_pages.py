"""The usage page in Chromium: the lab's usage for a lab admin (table, the per-month chart drawn by uPlot, the
filters refreshing the results with htmx, the CSV link), a member's own only; light and dark."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.utils import timezone
from selenium.webdriver.support.ui import Select

from tests.accounting.usage_rows import usage_rows
from tests.factories import SchedulableProfileFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lab(member, other_member):
    profile = SchedulableProfileFactory(name="Local SLURM")
    usage_rows(member, profile, 2, ended_at=timezone.make_aware(datetime(2026, 10, 10, 12)), core_hours="4")
    usage_rows(other_member, profile, 3, ended_at=timezone.make_aware(datetime(2026, 11, 10, 12)), core_hours="1")
    return profile


def table_rows(browser) -> list[str]:
    return [row.text for row in browser.find_all("#usage-table tbody tr")]


def test_a_lab_admin_sees_the_labs_usage_charted_and_regrouped_with_htmx(browser, lab, lab_admin, member) -> None:
    browser.login(lab_admin.username)
    browser.visit("/usage/?group_by=member")
    assert table_rows(browser) == ["alice_t 2 8.00 0.00 6.00", "bob_t 3 3.00 0.00 9.00"]
    assert browser.find("#usage-total").text == "Total 5 11.00 0.00 15.00"
    browser.wait_for(lambda d: d.find_elements("css selector", "#usage-chart canvas"), "the chart")
    legend = [label.text for label in browser.find_all("#usage-chart .u-legend .u-label")]
    assert legend == ["Month", "Core-hours", "GPU-hours", "SU"]
    browser.assert_nothing_external()
    browser.screenshot("usage-lab")

    Select(browser.find("#id_group_by")).select_by_value("month")  # htmx: the results only, the URL kept
    browser.wait_for(lambda d: "by month" in d.find_element("css selector", "#usage-heading").text, "by month")
    assert table_rows(browser) == ["2026-10 2 8.00 0.00 6.00", "2026-11 3 3.00 0.00 9.00"]
    assert "group_by=month" in browser.driver.current_url
    assert "/api/v1/usage/csv?scope=lab&group_by=month" in browser.find("#usage-csv").get_attribute("href")
    browser.wait_for(lambda d: d.find_elements("css selector", "#usage-chart canvas"), "the chart redrawn")

    browser.find("[data-theme-toggle]").click()
    browser.wait_for(lambda d: d.execute_script("return document.documentElement.dataset.theme"), "a theme")
    browser.wait_for(lambda d: d.find_elements("css selector", "#usage-chart canvas"), "the chart in the theme")
    browser.screenshot("usage-lab-other-theme")
    browser.driver.execute_script("localStorage.removeItem('portal-theme')")


def test_a_member_sees_only_their_own(browser, lab, member) -> None:
    browser.login(member.username)
    browser.visit("/usage/?group_by=member&scope=lab")
    assert browser.find("#usage-heading").text.startswith("My usage by member")
    assert table_rows(browser) == ["alice_t 2 8.00 0.00 6.00"]
    assert browser.find_all("#id_scope") == []
    browser.assert_nothing_external()
    browser.screenshot("usage-member")
