"""Members' cluster credentials: checked, encrypted at rest, write-only, rotatable, owner-scoped."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from clusters.access import access_credential, visible_credentials
from clusters.crypto import SealedSecret
from clusters.models import ClusterCredential
from clusters.services import save_key_credential, save_password_credential
from clusters.ssh.keys import generate_ed25519_key
from portal.errors import InvalidInput, NotFound
from tests.factories import ClusterProfileFactory

pytestmark = pytest.mark.django_db

PASSPHRASE = "tangerine-passphrase-4471"


@pytest.fixture
def profile():
    return ClusterProfileFactory(slug="hpc", name="HPC")


@pytest.fixture
def key_with_passphrase():
    return generate_ed25519_key(comment="test", passphrase=PASSPHRASE)


def raw_column(credential_id: int, column: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM clusters_clustercredential WHERE id = %s", [credential_id])
        return cursor.fetchone()[0]


def test_a_key_is_stored_encrypted_and_decrypts_back(member, profile, key_with_passphrase) -> None:
    credential = save_key_credential(
        user=member,
        profile=profile,
        remote_username="alice",
        private_key=key_with_passphrase.private_key,
        passphrase=PASSPHRASE,
    )
    stored_secret = raw_column(credential.pk, "secret")
    assert "PRIVATE KEY" not in stored_secret
    assert PASSPHRASE not in raw_column(credential.pk, "passphrase")
    reloaded = ClusterCredential.objects.get(pk=credential.pk)
    assert isinstance(reloaded.secret, SealedSecret)
    assert reloaded.secret.reveal().strip() == key_with_passphrase.private_key.strip()
    assert reloaded.passphrase.reveal() == PASSPHRASE
    assert reloaded.public_key == key_with_passphrase.public_key.rsplit(" ", 1)[0]
    assert PASSPHRASE not in repr(reloaded.passphrase) + str(reloaded.passphrase)
    assert "PRIVATE" not in repr(reloaded.secret) + str(reloaded.secret)


@pytest.mark.parametrize(
    ("private_key", "passphrase", "code"),
    [
        ("not a key", None, "KEY_FORMAT_INVALID"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----", None, "KEY_FORMAT_INVALID"),
        ("PROTECTED", None, "KEY_PASSPHRASE_REQUIRED"),
        ("PROTECTED", "wrong passphrase", "KEY_PASSPHRASE_WRONG"),
        ("PLAIN", "unexpected", "KEY_PASSPHRASE_UNEXPECTED"),
    ],
)
def test_an_unusable_key_is_refused_with_its_code_and_nothing_is_written(
    member, profile, key_with_passphrase, private_key, passphrase, code
) -> None:
    texts = {
        "PROTECTED": key_with_passphrase.private_key,
        "PLAIN": generate_ed25519_key(comment="t", passphrase=None).private_key,
    }
    with pytest.raises(InvalidInput) as raised:
        save_key_credential(
            user=member,
            profile=profile,
            remote_username="alice",
            private_key=texts.get(private_key, private_key),
            passphrase=passphrase,
        )
    assert raised.value.code == code
    assert ClusterCredential.objects.count() == 0


@pytest.mark.parametrize("username", ["alice;rm -rf ~", "$(id)", "Alice", "-oProxyCommand=x", "a b", ""])
def test_a_remote_username_with_shell_metacharacters_is_refused(member, profile, username) -> None:
    with pytest.raises(InvalidInput) as raised:
        save_password_credential(user=member, profile=profile, remote_username=username, password="pw")
    assert raised.value.code == "REMOTE_USERNAME_INVALID"
    assert ClusterCredential.objects.count() == 0


def test_replacing_a_credential_replaces_it_whole(member, profile, key_with_passphrase) -> None:
    first = save_key_credential(
        user=member,
        profile=profile,
        remote_username="alice",
        private_key=key_with_passphrase.private_key,
        passphrase=PASSPHRASE,
    )
    second = save_password_credential(user=member, profile=profile, remote_username="alice2", password="s3cret-pw")
    assert second.pk == first.pk
    reloaded = ClusterCredential.objects.get(pk=first.pk)
    assert (reloaded.auth_kind, reloaded.remote_username, reloaded.passphrase, reloaded.public_key) == (
        "password",
        "alice2",
        None,
        "",
    )
    assert reloaded.secret.reveal() == "s3cret-pw"


def test_key_rotation_re_encrypts_under_the_newest_key(member, profile, settings, key_with_passphrase) -> None:
    credential = save_key_credential(
        user=member,
        profile=profile,
        remote_username="alice",
        private_key=key_with_passphrase.private_key,
        passphrase=PASSPHRASE,
    )
    old_ciphertext = raw_column(credential.pk, "secret")
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), *settings.CREDENTIAL_KEYS]
    call_command("rotate_credential_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    new_ciphertext = raw_column(credential.pk, "secret")
    assert new_ciphertext != old_ciphertext
    settings.CREDENTIAL_KEYS = settings.CREDENTIAL_KEYS[:1]  # the old key is gone: only the new one remains
    reloaded = ClusterCredential.objects.get(pk=credential.pk)
    assert reloaded.secret.reveal().strip() == key_with_passphrase.private_key.strip()
    assert reloaded.passphrase.reveal() == PASSPHRASE


def bearer_for(user) -> dict[str, str]:
    from accounts.services import create_api_token

    return {"HTTP_AUTHORIZATION": f"Bearer {create_api_token(user=user, name='t', expires_in_days=1).secret}"}


def test_the_api_takes_a_secret_and_never_returns_it(api_client, member, profile, key_with_passphrase, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    headers = bearer_for(member)
    payload = {
        "remote_username": "alice",
        "auth_kind": "key",
        "private_key": key_with_passphrase.private_key,
        "passphrase": PASSPHRASE,
    }
    response = api_client.put(
        f"/api/v1/clusters/{profile.pk}/credential", payload, content_type="application/json", **headers
    )
    assert response.status_code == 200, response.content
    body = response.content.decode()
    assert PASSPHRASE not in body
    assert "PRIVATE KEY" not in body
    assert response.json()["has_passphrase"] is True
    fetched = api_client.get(f"/api/v1/clusters/{profile.pk}/credential", **headers).content.decode()
    assert PASSPHRASE not in fetched
    assert "PRIVATE KEY" not in fetched
    assert PASSPHRASE not in caplog.text
    assert "PRIVATE KEY" not in caplog.text


def test_the_api_reports_a_wrong_passphrase_with_its_code(api_client, member, profile, key_with_passphrase) -> None:
    payload = {
        "remote_username": "alice",
        "auth_kind": "key",
        "private_key": key_with_passphrase.private_key,
        "passphrase": "nope",
    }
    response = api_client.put(
        f"/api/v1/clusters/{profile.pk}/credential", payload, content_type="application/json", **bearer_for(member)
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "KEY_PASSPHRASE_WRONG"
    assert "nope" not in response.content.decode()


def test_generating_a_key_shows_the_public_half_to_install(api_client, member, profile) -> None:
    response = api_client.put(
        f"/api/v1/clusters/{profile.pk}/credential",
        {"remote_username": "alice", "auth_kind": "generate"},
        content_type="application/json",
        **bearer_for(member),
    )
    assert response.status_code == 200
    assert response.json()["public_key"].startswith("ssh-ed25519 ")
    assert "PRIVATE" not in response.content.decode()


def test_deleting_a_credential_over_the_api(api_client, member, profile) -> None:
    save_password_credential(user=member, profile=profile, remote_username="alice", password="pw")
    headers = bearer_for(member)
    assert api_client.delete(f"/api/v1/clusters/{profile.pk}/credential", **headers).status_code == 204
    response = api_client.get(f"/api/v1/clusters/{profile.pk}/credential", **headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "CREDENTIAL_NOT_FOUND"


def test_members_list_active_clusters_without_admin_only_fields(api_client, member, profile) -> None:
    ClusterProfileFactory(slug="retired", name="Retired", is_active=False)
    listing = api_client.get("/api/v1/clusters", **bearer_for(member)).json()
    assert [item["slug"] for item in listing] == ["hpc"]
    assert not {"pinned_host_keys", "pending_host_key", "new_sessions_per_minute"} & set(listing[0])


def test_admin_credential_pages_never_show_a_secret(client, lab_admin, member, profile, key_with_passphrase) -> None:
    credential = save_key_credential(
        user=member,
        profile=profile,
        remote_username="alice",
        private_key=key_with_passphrase.private_key,
        passphrase=PASSPHRASE,
    )
    client.force_login(lab_admin)
    for url in ("/admin/clusters/clustercredential/", f"/admin/clusters/clustercredential/{credential.pk}/change/"):
        page = client.get(url)
        assert page.status_code == 200
        assert PASSPHRASE not in page.content.decode()
        assert "PRIVATE KEY" not in page.content.decode()
        assert raw_column(credential.pk, "secret") not in page.content.decode()


@pytest.mark.parametrize(
    ("who", "can_see"),
    [("owner", True), ("other", False), ("admin", True), ("inactive_owner", False), ("missing", False)],
)
def test_access_credential(who, can_see, member, other_member, lab_admin, profile) -> None:
    credential = save_password_credential(user=member, profile=profile, remote_username="alice", password="pw")
    viewer = {"owner": member, "other": other_member, "admin": lab_admin, "inactive_owner": member, "missing": member}[
        who
    ]
    credential_id = credential.pk + 1000 if who == "missing" else credential.pk
    if who == "inactive_owner":
        member.is_active = False
        member.save(update_fields=["is_active"])
    if can_see:
        assert access_credential(user=viewer, credential_id=credential_id).pk == credential.pk
    else:
        with pytest.raises(NotFound):
            access_credential(user=viewer, credential_id=credential_id)
    assert visible_credentials(viewer).filter(pk=credential_id).exists() is can_see


@pytest.mark.parametrize(
    "pattern",
    ["/home/{username}/../etc", "home/{username}", "/scratch/{user}", "/scratch/{username}/$(id)", "/scratch/{0}"],
)
def test_a_root_pattern_that_escapes_or_is_malformed_is_refused(profile, pattern) -> None:
    from django.core.exceptions import ValidationError

    profile.scratch_root_pattern = pattern
    with pytest.raises(ValidationError) as raised:
        profile.full_clean()
    assert raised.value.error_dict["scratch_root_pattern"][0].code == "ROOT_PATTERN_INVALID"


def test_an_unknown_partition_name_is_refused(profile) -> None:
    from django.core.exceptions import ValidationError

    from clusters.models import Partition

    with pytest.raises(ValidationError) as raised:
        Partition(profile=profile, name="gpu;reboot", cores_per_node=1).full_clean()
    assert "name" in raised.value.error_dict


def test_a_cluster_whose_login_node_keeps_failing_shows_as_degraded(api_client, member, profile) -> None:
    from clusters.gateway import cluster_key, redis_client
    from clusters.ssh import CircuitBreaker

    headers = bearer_for(member)
    assert api_client.get(f"/api/v1/clusters/{profile.pk}", **headers).json()["health"] == "ok"
    breaker = CircuitBreaker(redis_client())
    for _ in range(breaker.failure_threshold):
        breaker.record_failure(cluster_key(profile))
    assert api_client.get(f"/api/v1/clusters/{profile.pk}", **headers).json()["health"] == "degraded"
