"""Accounts in the browser: log in, log out, lockout, the token page with htmx."""

from __future__ import annotations

import re

import pytest

from accounts.demo import DEMO_ACCOUNTS, ensure_demo_accounts
from accounts.models import ApiToken, User
from tests.factories import MEMBER_PASSWORD

pytestmark = pytest.mark.django_db


def test_pages_need_a_login(client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_member_logs_in_and_out(client, member) -> None:
    response = client.post("/login/", {"username": "alice_t", "password": MEMBER_PASSWORD}, follow=True)
    assert response.status_code == 200
    assert b"<h1>Dashboard</h1>" in response.content
    assert b"Signed in as alice_t, lab member." in response.content
    assert b"/admin/" not in response.content
    client.post("/logout/")
    assert client.get("/").status_code == 302


def test_a_lab_admin_sees_the_admin_link_and_reaches_the_admin(client, lab_admin) -> None:
    client.force_login(lab_admin)
    assert b'href="/admin/"' in client.get("/").content
    assert client.get("/admin/").status_code == 200


def test_a_member_cannot_reach_the_admin(client, member) -> None:
    client.force_login(member)
    assert client.get("/admin/").status_code == 302


def test_a_wrong_password_is_refused_and_repeated_failures_lock_out(client, member) -> None:
    for _ in range(5):
        response = client.post("/login/", {"username": "alice_t", "password": "wrong"})
        assert b"did not match" in response.content or response.status_code == 429
    response = client.post("/login/", {"username": "alice_t", "password": MEMBER_PASSWORD})
    assert response.status_code == 429
    assert not client.get("/").wsgi_request.user.is_authenticated


def test_the_token_page_creates_a_token_with_htmx_and_shows_it_once(client, member) -> None:
    client.force_login(member)
    response = client.post("/account/tokens/", {"name": "laptop", "expires_in_days": "30"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    secret = re.search(rb'<pre class="secret" id="new-token">([^<]+)</pre>', response.content).group(1).decode()
    assert ApiToken.objects.get(user=member, name="laptop").prefix == secret[:10]
    again = client.get("/account/tokens/")
    assert secret.encode() not in again.content
    assert b"laptop" in again.content


def test_the_token_page_reports_a_taken_name_on_the_form(client, member) -> None:
    client.force_login(member)
    client.post("/account/tokens/", {"name": "laptop", "expires_in_days": "30"})
    response = client.post("/account/tokens/", {"name": "laptop", "expires_in_days": "30"}, HTTP_HX_REQUEST="true")
    assert b"already have a live token named" in response.content
    assert ApiToken.objects.filter(user=member, name="laptop").count() == 1


def test_revoking_someone_elses_token_from_a_page_is_not_found(client, member, other_member) -> None:
    client.post("/login/", {"username": "bob_t", "password": MEMBER_PASSWORD})
    client.post("/account/tokens/", {"name": "bobs", "expires_in_days": "30"})
    token = ApiToken.objects.get(user=other_member)
    client.force_login(member)
    response = client.post(f"/account/tokens/{token.pk}/revoke/", HTTP_HX_REQUEST="true")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "TOKEN_NOT_FOUND"
    token.refresh_from_db()
    assert token.revoked_at is None


def test_demo_accounts_are_created_once_and_left_alone_after(member) -> None:
    first = ensure_demo_accounts()
    assert [created for _, created in first] == [True, True, True]
    alice = User.objects.get(username="alice")
    alice.set_password("changed by alice")
    alice.save()
    second = ensure_demo_accounts()
    assert [created for _, created in second] == [False, False, False]
    assert User.objects.get(username="alice").check_password("changed by alice") is True
    admin = User.objects.get(username="labadmin")
    assert admin.is_lab_admin is True
    assert admin.check_password(next(a.password for a in DEMO_ACCOUNTS if a.username == "labadmin")) is True
