"""The webhook URL is a credential: stored encrypted (the column holds ciphertext), never returned by the API or the
page (only whether one is set and its host), kept / removed / replaced as asked, never in a log line or a delivery's
error, migrated from plaintext and back, and re-encrypted by the key rotation."""

from __future__ import annotations

import importlib
import json
import logging

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from clusters.crypto import newest_key_id
from notifications import delivery, services
from notifications.models import Delivery, Event, NotificationPreference, WebhookHostAllowance
from tests.factories import UserFactory
from tests.notifications.receivers import webhook_receiver

pytestmark = pytest.mark.django_db

API = "/api/v1/notifications/preferences"
SECRET_PATH = "/services/T0ABC/B0DEF/xoxSecretToken42"
HOOK = f"https://93.184.215.14{SECRET_PATH}"
OTHER_HOOK = "https://93.184.215.15/services/T9/B9/anotherSecret77"
migration = importlib.import_module("notifications.migrations.0003_webhook_url_encrypted")


def raw_webhook(user) -> tuple[str | None, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT webhook_url, webhook_host FROM notifications_notificationpreference WHERE user_id = %s", [user.pk]
        )
        return cursor.fetchone()


def put(client, body: dict):
    return client.put(API, data=json.dumps(body), content_type="application/json")


def test_the_column_holds_ciphertext_and_the_send_reads_the_url(member) -> None:
    services.save_preferences(user=member, email_enabled=True, webhook_url=HOOK, browser_enabled=False, events=[])
    stored, host = raw_webhook(member)
    assert stored.startswith(f"{newest_key_id()}:")
    assert "93.184.215.14" not in stored
    assert "xoxSecretToken42" not in stored
    assert host == "93.184.215.14"
    assert NotificationPreference.objects.get(user=member).webhook_plaintext() == HOOK


def test_the_api_gives_whether_set_and_the_host_never_the_url(logged_in) -> None:
    unset = logged_in.get(API).json()
    assert (unset["webhook_set"], unset["webhook_host"], "webhook_url" in unset) == (False, "", False)
    saved = put(logged_in, {"email_enabled": True, "webhook_url": HOOK, "events": ["job_failed"]})
    read = logged_in.get(API)
    for response in (saved, read):
        assert response.status_code == 200
        assert SECRET_PATH.encode() not in response.content
        assert (response.json()["webhook_set"], response.json()["webhook_host"]) == (True, "93.184.215.14")


def test_the_api_keeps_removes_and_replaces_the_url(logged_in, member) -> None:
    put(logged_in, {"email_enabled": True, "webhook_url": HOOK, "events": ["job_failed"]})
    put(logged_in, {"email_enabled": False, "events": ["job_failed"]})  # omitted: kept
    assert NotificationPreference.objects.get(user=member).webhook_plaintext() == HOOK
    put(logged_in, {"email_enabled": True, "webhook_url": None, "events": []})  # null: kept
    assert NotificationPreference.objects.get(user=member).webhook_plaintext() == HOOK
    put(logged_in, {"email_enabled": True, "webhook_url": OTHER_HOOK, "events": []})  # a URL: replaced
    assert raw_webhook(member)[1] == "93.184.215.15"
    assert NotificationPreference.objects.get(user=member).webhook_plaintext() == OTHER_HOOK
    refused = put(logged_in, {"email_enabled": True, "webhook_url": "https://10.0.0.1/x/secret9", "events": []})
    assert refused.json()["error"]["code"] == "WEBHOOK_HOST_PRIVATE"
    assert b"secret9" not in refused.content
    assert NotificationPreference.objects.get(user=member).webhook_plaintext() == OTHER_HOOK  # a refusal keeps it
    answer = put(logged_in, {"email_enabled": True, "webhook_url": "", "events": []}).json()  # "": removed
    assert (answer["webhook_set"], answer["webhook_host"]) == (False, "")
    assert raw_webhook(member) == (None, "")


def test_the_page_shows_the_host_keeps_an_empty_input_and_removes_when_asked(logged_in, member) -> None:
    page = reverse("frontend:notification_preferences")
    form = {"email_enabled": "on", "webhook_url": HOOK, "events": ["job_failed"]}
    assert logged_in.post(page, form).status_code == 302
    shown = logged_in.get(page)
    assert SECRET_PATH.encode() not in shown.content
    assert b"Set, to <strong>93.184.215.14</strong>" in shown.content
    assert b"Leave empty to keep the current one" in shown.content
    assert b'name="remove_webhook"' in shown.content

    assert logged_in.post(page, {**form, "webhook_url": ""}).status_code == 302  # empty: kept
    assert NotificationPreference.objects.get(user=member).webhook_plaintext() == HOOK

    refused = logged_in.post(page, {**form, "webhook_url": "https://169.254.169.254/x/secret9"})
    assert b"WEBHOOK_HOST_PRIVATE" in refused.content
    assert b"secret9" not in refused.content
    assert SECRET_PATH.encode() not in refused.content

    both = logged_in.post(page, {**form, "webhook_url": OTHER_HOOK, "remove_webhook": "on"})
    assert both.status_code == 200
    assert b"not both" in both.content
    assert NotificationPreference.objects.get(user=member).webhook_plaintext() == HOOK

    assert logged_in.post(page, {**form, "webhook_url": "", "remove_webhook": "on"}).status_code == 302
    assert raw_webhook(member) == (None, "")
    shown = logged_in.get(page)
    assert b"None set." in shown.content
    assert b'name="remove_webhook"' not in shown.content


def test_a_failed_send_logs_and_keeps_its_code_never_the_url(sent_tasks, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with webhook_receiver(status=503) as receiver:
        WebhookHostAllowance.objects.create(host="127.0.0.1", allow_http=True)
        user = UserFactory(username="frank_n", email="")
        url = f"{receiver.url}/T0ABC/xoxSecretToken42?token=qs-secret-99"
        NotificationPreference.objects.create(user=user, webhook_url=url, events=[Event.JOB_COMPLETED])
        notification = services.notify(
            user, Event.JOB_COMPLETED, subject="Job completed: w", text="t", link="http://x/1", key="job:9:end"
        )
        (hook,) = notification.deliveries.all()
        assert delivery.send_delivery(delivery_id=hook.pk) == Delivery.State.PENDING
    assert receiver.calls[0]["path"] == "/hook/T0ABC/xoxSecretToken42?token=qs-secret-99"  # the URL was called
    row = Delivery.objects.filter(pk=hook.pk).values().get()
    assert row["last_error_code"] == "WEBHOOK_SERVER_ERROR"
    for secret in ("xoxSecretToken42", "qs-secret-99"):
        assert secret not in str(row)
        assert secret not in caplog.text
        assert all(secret not in str(record.__dict__) for record in caplog.records)


def test_a_url_the_keys_cannot_open_fails_for_good_with_its_code(sent_tasks, settings) -> None:
    user = UserFactory(username="gina_n", email="")
    NotificationPreference.objects.create(user=user, webhook_url=HOOK, events=[Event.JOB_COMPLETED])
    (hook,) = services.notify(
        user, Event.JOB_COMPLETED, subject="s", text="t", link="http://x/1", key="job:8:end"
    ).deliveries.all()
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]  # the key it was encrypted with is gone
    assert delivery.send_delivery(delivery_id=hook.pk) == Delivery.State.FAILED
    assert Delivery.objects.get(pk=hook.pk).last_error_code == "WEBHOOK_URL_UNREADABLE"


def test_the_migration_encrypts_stored_urls_and_back(member) -> None:
    other = UserFactory(username="hal_n")
    with connection.cursor() as cursor:  # rows as the old column held them: plaintext, "" for none
        for user, url in ((member, HOOK), (other, "")):
            cursor.execute(
                "INSERT INTO notifications_notificationpreference"
                " (user_id, email_enabled, webhook_url, webhook_host, browser_enabled, events, updated_at)"
                " VALUES (%s, true, %s, '', false, '[]', now())",
                [user.pk, url],
            )
    with connection.schema_editor() as editor:
        migration.encrypt_stored_urls(apps, editor)
    stored, host = raw_webhook(member)
    assert stored.startswith(f"{newest_key_id()}:")
    assert SECRET_PATH not in stored
    assert host == "93.184.215.14"
    assert raw_webhook(other) == (None, "")
    assert NotificationPreference.objects.get(user=member).webhook_plaintext() == HOOK

    with connection.schema_editor() as editor:
        migration.decrypt_stored_urls(apps, editor)
    assert raw_webhook(member)[0] == HOOK
    assert raw_webhook(other)[0] == ""


def test_key_rotation_re_encrypts_webhook_urls(member, settings) -> None:
    services.save_preferences(user=member, email_enabled=True, webhook_url=HOOK, browser_enabled=False, events=[])
    before = raw_webhook(member)[0]
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), *settings.CREDENTIAL_KEYS]
    call_command("rotate_credential_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    after = raw_webhook(member)[0]
    assert after != before
    assert after.startswith(f"{newest_key_id()}:")
    settings.CREDENTIAL_KEYS = settings.CREDENTIAL_KEYS[:1]  # only the new key remains
    assert NotificationPreference.objects.get(user=member).webhook_plaintext() == HOOK
