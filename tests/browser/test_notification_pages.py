"""The notification preferences page in Chromium: reached from the user menu, a refused webhook URL's code beside the
field, a public one saved with the events chosen (then shown by its host only), the browser-permission button
answered, nothing external; and a job-end notification really shown by the browser, once."""

from __future__ import annotations

import pytest

from notifications import services
from notifications.models import Event, NotificationPreference

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
    assert saved.events == ["job_completed", "job_failed", "job_continued", "run_ended", "budget_reached"]
    assert "Set, to 93.184.215.14" in browser.find("[data-webhook-state]").text
    assert browser.find("input[name=webhook_url]").get_attribute("value") == ""
    assert "/services/hook" not in browser.driver.page_source

    browser.find("[data-notify-permission]").click()
    browser.wait_for(
        lambda d: d.find_element("css selector", "[data-notify-permission-state]").text != "",
        "the permission's answer shown",
    )
    browser.assert_nothing_external()
    browser.screenshot("notification-preferences")


# Replaces window.Notification before any page script runs: each notification shown is recorded (the page cannot
# tell), while the permission is still the browser's own (granted to the live server's origin through CDP).
RECORDER_JS = """
(() => {
  const Real = window.Notification;
  const shown = [];
  class RecordedNotification extends EventTarget {
    constructor(title, options) {
      super();
      shown.push({ title: title, body: (options || {}).body, tag: (options || {}).tag });
    }
    static get permission() { return Real.permission; }
    static requestPermission() { return Real.requestPermission(); }
  }
  window.Notification = RecordedNotification;
  window.shownNotifications = shown;
})();
"""
LAST_ID = "return window.localStorage.getItem('portal-notifications-last-id')"
SHOWN = "return window.shownNotifications"
POLLS = "return performance.getEntriesByType('resource').filter(e => e.name.includes('/notifications/recent')).length"


@pytest.fixture
def notifications_recorded(browser, live_server, settings):
    """Chromium with the notifications permission granted to the live server and the recorder in every page; the
    pages poll every 300 ms. Both are taken back after the test (the Chromium session is shared)."""
    settings.NOTIFICATIONS_POLL_MS = 300
    driver = browser.driver
    driver.execute_cdp_cmd("Browser.grantPermissions", {"origin": live_server.url, "permissions": ["notifications"]})
    script = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER_JS})
    yield browser
    driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
    driver.execute_cdp_cmd("Browser.resetPermissions", {})
    driver.execute_script("window.localStorage.clear()")


def test_a_job_end_is_shown_once_as_a_browser_notification(notifications_recorded, member) -> None:
    browser = notifications_recorded
    browser.login(member.username)
    browser.visit("/notifications/")
    browser.driver.execute_script("window.localStorage.clear()")
    browser.find("[data-notify-permission]").click()
    assert browser.wait_visible("[data-notify-permission-state]").text == "Allowed in this browser."
    browser.find("input[name=email_enabled]").click()  # off: the browser is the only channel
    browser.find("input[name=browser_enabled]").click()
    browser.find("main form button[type=submit]").click()
    assert "Notification preferences saved." in browser.wait_visible(".notice").text
    assert NotificationPreference.objects.get(user=member).browser_enabled is True
    browser.wait_for(lambda d: d.execute_script(LAST_ID) is not None, "the page's first poll (where it stands)")
    assert browser.driver.execute_script(SHOWN) == []

    notification = services.notify(
        member,
        Event.JOB_COMPLETED,
        subject="Job completed: water box",
        text="It completed. Open the job for its results.",
        link=services.absolute_link("/jobs/1/"),
        key="job:1:end",
    )
    browser.wait_for(lambda d: d.execute_script(SHOWN) != [], "the notification shown", timeout_s=10)
    polls = browser.driver.execute_script(POLLS)
    browser.wait_for(lambda d: d.execute_script(POLLS) >= polls + 2, "two more polls")
    assert browser.driver.execute_script(SHOWN) == [
        {
            "title": "Job completed: water box",
            "body": "It completed. Open the job for its results.",
            "tag": f"portal-{notification.pk}",
        }
    ]
    assert browser.driver.execute_script(LAST_ID) == str(notification.pk)

    browser.visit("/")  # a new page (a new recorder) polls from the id the last one kept: nothing again
    browser.wait_for(lambda d: d.execute_script(POLLS) >= 3, "the new page's polls")
    assert browser.driver.execute_script(SHOWN) == []
    browser.assert_nothing_external()
