"""Personal API tokens: issue, authenticate, revoke; every failure is a 401 with the envelope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import create_api_token, revoke_api_token
from accounts.tokens import token_digest

pytestmark = pytest.mark.django_db


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def assert_envelope(response, *, status: int, code: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]


def test_no_token_gets_401_with_the_envelope(api_client) -> None:
    assert_envelope(api_client.get("/api/v1/me"), status=401, code="AUTH_REQUIRED")


def test_a_wrong_token_gets_401(api_client, member) -> None:
    create_api_token(user=member, name="script", expires_in_days=30)
    response = api_client.get("/api/v1/me", **bearer("np_" + "x" * 40))
    assert_envelope(response, status=401, code="TOKEN_INVALID")


def test_a_malformed_token_gets_401(api_client) -> None:
    assert_envelope(api_client.get("/api/v1/me", **bearer("not-a-portal-token")), status=401, code="TOKEN_INVALID")


def test_a_revoked_token_gets_401(api_client, member) -> None:
    issued = create_api_token(user=member, name="script", expires_in_days=30)
    revoke_api_token(token=issued.token)
    assert_envelope(api_client.get("/api/v1/me", **bearer(issued.secret)), status=401, code="TOKEN_REVOKED")


def test_an_expired_token_gets_401(api_client, member) -> None:
    issued = create_api_token(user=member, name="script", expires_in_days=1)
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_envelope(api_client.get("/api/v1/me", **bearer(issued.secret)), status=401, code="TOKEN_EXPIRED")


def test_a_token_of_a_deactivated_user_gets_401(api_client, member) -> None:
    issued = create_api_token(user=member, name="script", expires_in_days=30)
    member.is_active = False
    member.save(update_fields=["is_active"])
    assert_envelope(api_client.get("/api/v1/me", **bearer(issued.secret)), status=401, code="TOKEN_INVALID")


def test_a_valid_token_authenticates_and_records_its_use(api_client, member) -> None:
    issued = create_api_token(user=member, name="script", expires_in_days=30)
    assert issued.token.last_used_at is None
    response = api_client.get("/api/v1/me", **bearer(issued.secret))
    assert response.status_code == 200
    assert response.json() == {
        "id": member.pk,
        "username": "alice_t",
        "email": "alice_t@lab.example",
        "is_lab_admin": False,
    }
    issued.token.refresh_from_db()
    assert issued.token.last_used_at is not None


def test_only_the_digest_of_a_token_is_stored(member) -> None:
    issued = create_api_token(user=member, name="script", expires_in_days=None)
    stored = ApiToken.objects.get(pk=issued.token.pk)
    assert stored.digest == token_digest(issued.secret)
    assert issued.secret not in {stored.digest, stored.prefix, stored.name}
    assert issued.secret.startswith(stored.prefix)
    assert stored.expires_at is None


def test_creating_a_token_over_the_api_shows_the_secret_once(api_client, member) -> None:
    first = create_api_token(user=member, name="bootstrap", expires_in_days=30)
    response = api_client.post(
        "/api/v1/tokens",
        {"name": "pipeline", "expires_in_days": 7},
        content_type="application/json",
        **bearer(first.secret),
    )
    assert response.status_code == 201
    created = response.json()
    assert created["name"] == "pipeline"
    assert created["token"].startswith(created["prefix"])
    assert api_client.get("/api/v1/me", **bearer(created["token"])).status_code == 200
    listing = api_client.get("/api/v1/tokens", **bearer(first.secret)).json()
    assert sorted(item["name"] for item in listing) == ["bootstrap", "pipeline"]
    assert all("token" not in item and "digest" not in item for item in listing)


def test_a_second_live_token_with_the_same_name_is_a_conflict(api_client, member) -> None:
    first = create_api_token(user=member, name="pipeline", expires_in_days=30)
    response = api_client.post(
        "/api/v1/tokens",
        {"name": "pipeline", "expires_in_days": 7},
        content_type="application/json",
        **bearer(first.secret),
    )
    assert_envelope(response, status=409, code="TOKEN_NAME_TAKEN")


def test_bad_input_gets_422_with_the_field_named(api_client, member) -> None:
    first = create_api_token(user=member, name="bootstrap", expires_in_days=30)
    response = api_client.post("/api/v1/tokens", {"name": ""}, content_type="application/json", **bearer(first.secret))
    assert_envelope(response, status=422, code="INVALID_INPUT")
    assert response.json()["error"]["details"]["problems"][0]["field"].endswith("name")


def test_an_out_of_range_expiry_is_refused_with_its_own_code(api_client, member) -> None:
    first = create_api_token(user=member, name="bootstrap", expires_in_days=30)
    response = api_client.post(
        "/api/v1/tokens",
        {"name": "x", "expires_in_days": 9999},
        content_type="application/json",
        **bearer(first.secret),
    )
    assert_envelope(response, status=422, code="TOKEN_EXPIRY_INVALID")


def test_revoking_over_the_api_stops_the_token(api_client, member) -> None:
    keeper = create_api_token(user=member, name="keeper", expires_in_days=30)
    doomed = create_api_token(user=member, name="doomed", expires_in_days=30)
    response = api_client.delete(f"/api/v1/tokens/{doomed.token.pk}", **bearer(keeper.secret))
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    assert_envelope(api_client.get("/api/v1/me", **bearer(doomed.secret)), status=401, code="TOKEN_REVOKED")


def test_someone_elses_token_cannot_be_revoked(api_client, member, other_member) -> None:
    mine = create_api_token(user=member, name="mine", expires_in_days=30)
    theirs = create_api_token(user=other_member, name="theirs", expires_in_days=30)
    response = api_client.delete(f"/api/v1/tokens/{theirs.token.pk}", **bearer(mine.secret))
    assert_envelope(response, status=404, code="TOKEN_NOT_FOUND")
    theirs.token.refresh_from_db()
    assert theirs.token.revoked_at is None


def test_session_auth_works_for_the_browser(client, member) -> None:
    client.force_login(member)
    assert client.get("/api/v1/me").json()["username"] == "alice_t"


def test_openapi_schema_is_served_and_documents_bearer_auth(client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/tokens" in schema["paths"]
    assert any(scheme.get("scheme") == "bearer" for scheme in schema["components"]["securitySchemes"].values())


def test_api_docs_page_uses_no_cdn(client, member) -> None:
    client.force_login(member)
    html = client.get("/api/v1/docs").content.decode()
    assert "cdn." not in html
    assert "/static/" in html


def post_token(api_client, secret: str, name: str, expires_in_days: int | None):
    payload = {"name": name, "expires_in_days": expires_in_days}
    return api_client.post("/api/v1/tokens", payload, content_type="application/json", **bearer(secret))


def test_a_token_cannot_create_a_token_that_never_expires(api_client, member) -> None:
    short = create_api_token(user=member, name="one day", expires_in_days=1)
    response = api_client.post(
        "/api/v1/tokens",
        {"name": "forever", "expires_in_days": None},
        content_type="application/json",
        **bearer(short.secret),
    )
    assert_envelope(response, status=403, code="TOKEN_OUTLIVES_CALLER")
    assert list(ApiToken.objects.filter(user=member).values_list("name", flat=True)) == ["one day"]


def test_a_token_cannot_create_a_token_that_outlives_it(api_client, member) -> None:
    short = create_api_token(user=member, name="one day", expires_in_days=1)
    response = post_token(api_client, short.secret, "longer", 2)
    assert_envelope(response, status=403, code="TOKEN_OUTLIVES_CALLER")


def test_a_token_may_create_one_expiring_no_later_than_itself(api_client, member) -> None:
    caller = create_api_token(user=member, name="caller", expires_in_days=30)
    response = post_token(api_client, caller.secret, "child", 7)
    assert response.status_code == 201
    child = ApiToken.objects.get(user=member, name="child")
    assert child.expires_at is not None
    assert child.expires_at <= caller.token.expires_at


def test_a_token_that_never_expires_may_create_one_that_does_but_not_a_permanent_one(api_client, member) -> None:
    caller = create_api_token(user=member, name="caller", expires_in_days=None)
    made = post_token(api_client, caller.secret, "dated", 366)
    assert made.status_code == 201
    refused = post_token(api_client, caller.secret, "forever", None)
    assert_envelope(refused, status=403, code="TOKEN_OUTLIVES_CALLER")


def test_a_session_may_create_a_token_that_never_expires(client, member) -> None:
    client.force_login(member)
    response = client.post(
        "/api/v1/tokens", {"name": "forever", "expires_in_days": None}, content_type="application/json"
    )
    assert response.status_code == 201
    assert ApiToken.objects.get(user=member, name="forever").expires_at is None


def test_changing_the_password_on_the_page_revokes_every_token(api_client, client, member, other_member) -> None:
    member.set_password("the old passphrase 1")
    member.save()
    mine = [create_api_token(user=member, name=f"t{n}", expires_in_days=30) for n in range(2)]
    theirs = create_api_token(user=other_member, name="theirs", expires_in_days=30)
    client.force_login(member)
    new = "a new and longer passphrase 2"
    response = client.post(
        "/account/password/",
        {"old_password": "the old passphrase 1", "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    for issued in mine:
        assert_envelope(api_client.get("/api/v1/me", **bearer(issued.secret)), status=401, code="TOKEN_REVOKED")
    assert api_client.get("/api/v1/me", **bearer(theirs.secret)).status_code == 200


def test_a_refused_password_change_keeps_the_tokens(api_client, client, member) -> None:
    member.set_password("the old passphrase 1")
    member.save()
    issued = create_api_token(user=member, name="kept", expires_in_days=30)
    client.force_login(member)
    response = client.post(
        "/account/password/", {"old_password": "wrong", "new_password1": "x y z 123", "new_password2": "x y z 123"}
    )
    assert response.status_code == 200
    assert api_client.get("/api/v1/me", **bearer(issued.secret)).status_code == 200


def test_an_admin_setting_a_password_revokes_that_users_tokens(api_client, client, member, lab_admin) -> None:
    issued = create_api_token(user=member, name="script", expires_in_days=30)
    client.force_login(lab_admin)
    new = "set by the admin 12345"
    response = client.post(
        f"/admin/accounts/user/{member.pk}/password/",
        {"password1": new, "password2": new, "usable_password": "true"},
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password(new) is True
    assert_envelope(api_client.get("/api/v1/me", **bearer(issued.secret)), status=401, code="TOKEN_REVOKED")


def test_the_changepassword_command_revokes_the_users_tokens(api_client, member, monkeypatch) -> None:
    from django.core.management import call_command

    from accounts.management.commands import changepassword

    issued = create_api_token(user=member, name="script", expires_in_days=30)
    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": "a command-set passphrase 9")
    call_command("changepassword", member.username)
    member.refresh_from_db()
    assert member.check_password("a command-set passphrase 9") is True
    assert_envelope(api_client.get("/api/v1/me", **bearer(issued.secret)), status=401, code="TOKEN_REVOKED")
