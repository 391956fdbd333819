"""The notification preferences page in Chromium: reached from the user menu, a refused webhook URL's code beside the
field, a public one saved with the events chosen, the browser-permission button answered, nothing external."""

from __future__ import annotations

import pytest

from notifications.models import NotificationPreference

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_sets_their_notifications(browser, member) -> None:
    browser.login(member.username)
    browser.visit("/")
    browser.find("nav details.menu summary").click()
    browser.find("nav a[href='/notifications/']").click()
    browser.wait_for(lambda d: d.current_url.endswith("/notifications/"), "the preferences page")
    assert "Nothing is sent until you save" in browser.text()

    browser.find("input[name=webhook_url]").send_keys("https://169.254.169.254/latest")
    browser.find("main form button[type=submit]").click()
    assert "WEBHOOK_HOST_PRIVATE" in browser.wait_visible("#webhook-url-error").text
    browser.screenshot("notification-preferences-refused")
    assert NotificationPreference.objects.filter(user=member).exists() is False

    field = browser.find("input[name=webhook_url]")
    field.clear()
    field.send_keys("https://93.184.215.14/services/hook")
    browser.find("input[name=events][value=job_stalled]").click()  # unticked: every event starts ticked
    browser.find("main form button[type=submit]").click()
    assert "Notification preferences saved." in browser.wait_visible(".notice").text
    saved = NotificationPreference.objects.get(user=member)
    assert saved.webhook_plaintext() == "https://93.184.215.14/services/hook"
    assert saved.events == ["job_completed", "job_failed", "job_continued", "run_ended"]

    browser.find("[data-notify-permission]").click()
    browser.wait_for(
        lambda d: d.find_element("css selector", "[data-notify-permission-state]").text != "",
        "the permission's answer shown",
    )
    browser.assert_nothing_external()
    browser.screenshot("notification-preferences")
