"""The preferences API and page (parity: the same service, the same codes) and the recent notifications poll."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from notifications.models import Event, Notification, NotificationPreference, WebhookHostAllowance
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications/preferences"


def put(client, body: dict):
    return client.put(URL, data=json.dumps(body), content_type="application/json")


def test_a_member_saves_and_reads_their_preferences(logged_in, member) -> None:
    assert logged_in.get(URL).json()["events"] == [event.value for event in Event]  # the defaults, unsaved
    response = put(
        logged_in,
        {"email_enabled": True, "webhook_url": "https://93.184.215.14/hook", "events": ["job_failed", "run_ended"]},
    )
    assert response.status_code == 200
    assert response.json()["events"] == ["job_failed", "run_ended"]
    saved = NotificationPreference.objects.get(user=member)
    assert (saved.webhook_plaintext(), saved.email_enabled, saved.browser_enabled) == (
        "https://93.184.215.14/hook",
        True,
        False,
    )


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://127.0.0.1/hook", "WEBHOOK_HOST_PRIVATE"),
        ("https://[::ffff:10.0.0.1]/hook", "WEBHOOK_HOST_PRIVATE"),
        ("https://2130706433/hook", "WEBHOOK_HOST_PRIVATE"),
        ("http://93.184.215.14/hook", "WEBHOOK_URL_NOT_HTTPS"),
        ("https://u:p@93.184.215.14/hook", "WEBHOOK_URL_INVALID"),
    ],
)
def test_a_refused_webhook_url_gets_its_code_in_the_envelope_and_changes_nothing(logged_in, member, url, code) -> None:
    response = put(logged_in, {"email_enabled": True, "webhook_url": url, "events": ["job_failed"]})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["details"] == {"field": "webhook_url"}
    assert NotificationPreference.objects.filter(user=member).exists() is False


def test_an_admin_allowed_local_host_is_accepted(logged_in) -> None:
    WebhookHostAllowance.objects.create(host="127.0.0.1")
    response = put(logged_in, {"email_enabled": False, "webhook_url": "https://127.0.0.1:8443/h", "events": []})
    assert response.status_code == 200


def test_an_unknown_event_is_invalid_input(logged_in) -> None:
    response = put(logged_in, {"email_enabled": True, "events": ["job_exploded"]})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "INVALID_INPUT")


def test_the_page_shows_the_code_beside_the_field_and_saves_like_the_api(logged_in, member) -> None:
    page = reverse("frontend:notification_preferences")
    form = {"email_enabled": "on", "webhook_url": "https://169.254.169.254/x", "events": ["job_failed"]}
    response = logged_in.post(page, form)
    assert response.status_code == 200
    assert b"WEBHOOK_HOST_PRIVATE" in response.content
    assert b'id="webhook-url-error"' in response.content
    form["webhook_url"] = "https://93.184.215.14/hook"
    response = logged_in.post(page, form)
    assert response.status_code == 302
    assert NotificationPreference.objects.get(user=member).events == ["job_failed"]


def test_recent_lists_only_my_newer_notifications(logged_in, member) -> None:
    other = UserFactory(username="eve_n")
    NotificationPreference.objects.create(user=member, browser_enabled=True, events=[])

    def note(user, n: int) -> Notification:
        return Notification.objects.create(
            recipient=user,
            event="job_completed",
            idempotency_key=f"{user.pk}:{n}",
            subject=f"s{n}",
            text="t",
            link="http://x/",
        )

    first, second = note(member, 1), note(member, 2)
    note(other, 3)
    answer = logged_in.get("/api/v1/notifications/recent", {"after": first.pk}).json()
    assert answer["browser_enabled"] is True
    assert [item["id"] for item in answer["notifications"]] == [second.pk]
    answer = logged_in.get("/api/v1/notifications/recent").json()
    assert [item["subject"] for item in answer["notifications"]] == ["s1", "s2"]
