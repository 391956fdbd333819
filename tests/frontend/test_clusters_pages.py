"""The clusters page: profiles with host key fingerprints and partitions, the member's own credential (added
three ways, replaced, deleted; secrets never sent back), and the connection test polled until it answers."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from clusters.models import ClusterCredential
from clusters.services import save_key_credential, save_password_credential
from clusters.ssh.keys import generate_ed25519_key
from portal.celery import app as celery_app
from tests.factories import ClusterProfileFactory

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
PASSPHRASE = "walnut-passphrase-9921"
PASSWORD = "correct-cluster-pw-5531"


def host_key_line() -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def sha256_fingerprint(key_line: str) -> str:
    """OpenSSH's SHA256 fingerprint, computed here from the key blob (independently of the portal)."""
    digest = hashlib.sha256(base64.b64decode(key_line.split()[1])).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def key_body_lines(private_key: str) -> list[str]:
    """The base64 lines of a private key: none of them may ever appear in a page."""
    lines = [line for line in private_key.strip().splitlines() if "PRIVATE KEY" not in line]
    assert len(lines) >= 3
    return lines


def assert_no_secret(content: bytes, *, private_key: str = "", others: tuple[str, ...] = ()) -> None:
    text = content.decode()
    for line in key_body_lines(private_key) if private_key else []:
        assert line not in text
    for secret in others:
        assert secret not in text


def save_url(profile) -> str:
    return reverse("frontend:credential_save", args=[profile.pk])


def poll_url(content: bytes) -> str:
    found = re.search(rb'hx-get="([^"]+)" hx-trigger="every 1s"', content)
    assert found is not None, content.decode()
    return html.unescape(found.group(1).decode())


@pytest.fixture
def pinned_profile(profile):
    profile.pinned_host_keys = host_key_line() + " root@login\n"
    profile.save()
    return profile


@pytest.fixture
def key_credential(member, profile) -> ClusterCredential:
    key = generate_ed25519_key(comment="t", passphrase=None)
    return save_key_credential(
        user=member, profile=profile, remote_username="alice", private_key=key.private_key, passphrase=None
    )


# ------------------------------------------------------------------------------------------- the page


def test_the_page_lists_usable_clusters_with_fingerprints_and_partition_limits(member_client, pinned_profile) -> None:
    unpinned = ClusterProfileFactory(name="Unpinned HPC", slug="unpinned")
    ClusterProfileFactory(name="Switched-off HPC", slug="off", is_active=False)
    response = member_client.get(reverse("frontend:clusters"))
    assert response.status_code == 200
    text = response.content.decode()
    assert f"<code>{sha256_fingerprint(pinned_profile.pinned_host_key_lines[0])}</code>" in text
    assert "<code>login.cluster.example:22</code>" in text
    assert re.search(r'<th scope="row">debug <span class="badge">default</span></th>\s*<td>1:00:00</td>', text)
    unpinned_panel = text[text.index(f'id="cluster-{unpinned.pk}"') :]
    assert "No host key is pinned yet: an admin must pin it" in unpinned_panel
    assert "Switched-off HPC" not in text
    assert "The portal has no login for you on this cluster yet" in text
    assert response["Content-Security-Policy"].startswith("default-src 'self'")


def test_the_page_needs_a_login(client) -> None:
    response = client.get(reverse("frontend:clusters"))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


# ------------------------------------------------------------------------------------------- adding a login


def test_a_pasted_key_is_saved_and_neither_it_nor_its_passphrase_comes_back(member, member_client, profile) -> None:
    key = generate_ed25519_key(comment="t", passphrase=PASSPHRASE)
    response = member_client.post(
        save_url(profile),
        {"method": "upload", "remote_username": "alice", "private_key": key.private_key, "passphrase": PASSPHRASE},
        **HX,
    )
    assert response.status_code == 200
    credential = ClusterCredential.objects.get(user=member, profile=profile)
    assert (credential.auth_kind, credential.remote_username) == ("key", "alice")
    assert credential.public_key == key.public_key.rsplit(" ", 1)[0]
    shown = f'<pre class="public-key" id="public-key-{profile.pk}">{credential.public_key}</pre>'
    assert shown.encode() in response.content
    assert f'data-copy="public-key-{profile.pk}"'.encode() in response.content
    assert_no_secret(response.content, private_key=key.private_key, others=(PASSPHRASE,))
    page = member_client.get(reverse("frontend:clusters"))
    assert credential.public_key.encode() in page.content
    assert_no_secret(page.content, private_key=key.private_key, others=(PASSPHRASE,))


def test_a_key_file_is_saved_without_javascript_and_the_page_says_so(member, member_client, profile) -> None:
    key = generate_ed25519_key(comment="t", passphrase=None)
    upload = SimpleUploadedFile("id_ed25519", key.private_key.encode())
    response = member_client.post(
        save_url(profile), {"method": "upload", "remote_username": "alice", "private_key_file": upload}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/clusters/#cluster-{profile.pk}"
    credential = ClusterCredential.objects.get(user=member, profile=profile)
    assert credential.secret.reveal().strip() == key.private_key.strip()
    page = member_client.get(response["Location"])
    assert b"Saved. Test the connection" in page.content
    assert credential.public_key.encode() in page.content
    assert_no_secret(page.content, private_key=key.private_key)


def test_a_generated_key_shows_its_ed25519_public_half_and_where_to_put_it(member, member_client, profile) -> None:
    response = member_client.post(save_url(profile), {"method": "generate", "remote_username": "alice"}, **HX)
    assert response.status_code == 200
    credential = ClusterCredential.objects.get(user=member, profile=profile)
    shown = re.search(rb'<pre class="public-key" id="public-key-\d+">([^<]+)</pre>', response.content)
    assert shown is not None
    assert shown.group(1).decode().startswith("ssh-ed25519 AAAA")
    assert shown.group(1).decode() == credential.public_key
    assert b"~/.ssh/authorized_keys" in response.content
    assert b"Your new key is ready" in response.content
    assert_no_secret(response.content, private_key=credential.secret.reveal())


def test_a_password_is_saved_and_never_shown(member, member_client, profile) -> None:
    response = member_client.post(
        save_url(profile), {"method": "password", "remote_username": "alice", "password": PASSWORD}, **HX
    )
    assert response.status_code == 200
    credential = ClusterCredential.objects.get(user=member, profile=profile)
    assert (credential.auth_kind, credential.public_key) == ("password", "")
    assert credential.secret.reveal() == PASSWORD
    assert_no_secret(response.content, others=(PASSWORD,))
    assert_no_secret(member_client.get(reverse("frontend:clusters")).content, others=(PASSWORD,))


def test_saving_again_replaces_the_login_whole(member, member_client, profile) -> None:
    first = save_password_credential(user=member, profile=profile, remote_username="alice", password=PASSWORD)
    response = member_client.post(save_url(profile), {"method": "generate", "remote_username": "alice2"}, **HX)
    assert response.status_code == 200
    replaced = ClusterCredential.objects.get(user=member, profile=profile)
    assert (replaced.pk, replaced.auth_kind, replaced.remote_username) == (first.pk, "key", "alice2")
    assert b'hx-confirm="Replace your login for' in response.content


# ------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("private_key", "passphrase", "field", "code"),
    [
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90LWEta2V5LWF0LWFsbA==\nQUFBQQ==\nQkJCQg==\n"
            "-----END OPENSSH PRIVATE KEY-----",
            "",
            "private_key",
            "KEY_FORMAT_INVALID",
        ),
        ("PROTECTED", "not-the-passphrase", "passphrase", "KEY_PASSPHRASE_WRONG"),
        ("PROTECTED", "", "passphrase", "KEY_PASSPHRASE_REQUIRED"),
        ("", "", "private_key", "KEY_FORMAT_INVALID"),
    ],
)
def test_an_unusable_key_is_refused_next_to_its_field_with_its_code_and_not_sent_back(
    member_client, profile, private_key, passphrase, field, code
) -> None:
    if private_key == "PROTECTED":
        private_key = generate_ed25519_key(comment="t", passphrase=PASSPHRASE).private_key
    response = member_client.post(
        save_url(profile),
        {"method": "upload", "remote_username": "alice", "private_key": private_key, "passphrase": passphrase},
        **HX,
    )
    assert response.status_code == 200
    assert ClusterCredential.objects.count() == 0
    field_id = f"cluster-{profile.pk}-upload-{field}"
    error = re.search(
        rf'<div class="field-error" id="{field_id}_error" role="alert">(.*?)</div>', response.content.decode()
    )
    assert error is not None, response.content.decode()
    assert f"<code>{code}</code>" in error.group(1)
    widget = re.search(rf'<(?:input|textarea)[^>]*id="{field_id}"[^>]*>', response.content.decode()).group(0)
    assert 'aria-invalid="true"' in widget
    assert f"{field_id}_error" in widget
    assert '<details class="credential-method" open>' in response.content.decode()
    if private_key:
        assert_no_secret(response.content, private_key=private_key)
    if passphrase:
        assert_no_secret(response.content, others=(passphrase,))


def test_a_bad_username_is_refused_and_the_password_is_not_filled_in_again(member_client, profile) -> None:
    payload = {"method": "password", "remote_username": "alice;rm", "password": PASSWORD}
    response = member_client.post(save_url(profile), payload, **HX)
    assert response.status_code == 200
    assert ClusterCredential.objects.count() == 0
    text = response.content.decode()
    assert re.search(
        rf'id="cluster-{profile.pk}-password-remote_username_error" role="alert">.*'
        r"<code>REMOTE_USERNAME_INVALID</code>",
        text,
    )
    assert_no_secret(response.content, others=(PASSWORD,))
    without_js = member_client.post(save_url(profile), payload)
    assert without_js.status_code == 422  # the whole page, with the panel and its errors
    assert b"<h1>Clusters and your logins</h1>" in without_js.content
    assert b"REMOTE_USERNAME_INVALID" in without_js.content
    assert_no_secret(without_js.content, others=(PASSWORD,))


def test_an_unknown_way_or_an_unusable_cluster_is_refused(member_client, profile) -> None:
    unknown = member_client.post(save_url(profile), {"method": "telepathy", "remote_username": "alice"}, **HX)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "CREDENTIAL_METHOD_INVALID"
    switched_off = ClusterProfileFactory(slug="off", is_active=False)
    response = member_client.post(
        save_url(switched_off), {"method": "password", "remote_username": "alice", "password": PASSWORD}, **HX
    )
    assert response.status_code == 404
    assert ClusterCredential.objects.count() == 0


# ------------------------------------------------------------------------------------------- someone else's


def test_another_member_cannot_test_poll_or_delete_my_login_and_nothing_changes(
    key_credential, other_member, django_capture_on_commit_callbacks
) -> None:
    from django.test import Client

    other = Client()
    other.force_login(other_member)
    pk = key_credential.pk
    since = timezone.now().isoformat()
    with django_capture_on_commit_callbacks() as callbacks:
        tested = other.post(reverse("frontend:credential_test", args=[pk]), **HX)
        deleted = other.post(reverse("frontend:credential_delete", args=[pk]), **HX)
        polled = other.get(reverse("frontend:credential_status", args=[pk]), {"since": since}, **HX)
    assert [tested.status_code, deleted.status_code, polled.status_code] == [404, 404, 404]
    assert tested.json()["error"]["code"] == "CREDENTIAL_NOT_FOUND"
    assert callbacks == []
    unchanged = ClusterCredential.objects.get(pk=pk)
    assert (unchanged.last_test_ok, unchanged.last_test_summary) == (None, "")
    page = other.get(reverse("frontend:clusters")).content
    assert key_credential.public_key.encode() not in page


def test_a_lab_admin_does_not_act_with_a_members_login_from_the_page(key_credential, lab_admin) -> None:
    from django.test import Client

    admin = Client()
    admin.force_login(lab_admin)
    assert admin.post(reverse("frontend:credential_delete", args=[key_credential.pk]), **HX).status_code == 404
    assert ClusterCredential.objects.filter(pk=key_credential.pk).exists() is True


# ------------------------------------------------------------------------------------------- delete


def test_deleting_my_login_shows_the_forms_again(member_client, key_credential, profile) -> None:
    response = member_client.post(reverse("frontend:credential_delete", args=[key_credential.pk]), **HX)
    assert response.status_code == 200
    assert ClusterCredential.objects.filter(pk=key_credential.pk).exists() is False
    assert b"Your credential was deleted" in response.content
    assert b"The portal has no login for you on this cluster yet" in response.content
    assert response.content.lstrip().startswith(
        f'<section class="card cluster-panel" id="cluster-{profile.pk}"'.encode()
    )


def test_the_delete_button_asks_first(member_client, key_credential) -> None:
    page = member_client.get(reverse("frontend:clusters")).content.decode()
    form = re.search(r'<form [^>]*action="/clusters/credentials/\d+/delete/"[^>]*>', page).group(0)
    assert 'hx-confirm="Delete your login for' in form


# ------------------------------------------------------------------------------------------- connection test


def test_testing_the_connection_queues_the_task_and_starts_polling(
    member, member_client, key_credential, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    queued = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args, **options: queued.append((name, *args)))
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(reverse("frontend:credential_test", args=[key_credential.pk]), **HX)
    assert response.status_code == 200
    assert queued == [("clusters.tasks.check_credential_connection_task", key_credential.pk, member.pk)]
    assert ClusterCredential.objects.get(pk=key_credential.pk).last_test_summary == "Testing…"
    assert poll_url(response.content).startswith(f"/clusters/credentials/{key_credential.pk}/status/?since=")
    assert b"Testing the connection to" in response.content


def test_the_status_keeps_polling_until_an_answer_newer_than_the_request_then_shows_it(
    member_client, key_credential, profile
) -> None:
    asked_at = timezone.now()
    ClusterCredential.objects.filter(pk=key_credential.pk).update(
        last_test_ok=True, last_tested_at=asked_at - timedelta(seconds=5), last_test_summary="OK: an older answer"
    )
    url = reverse("frontend:credential_status", args=[key_credential.pk])
    older = member_client.get(url, {"since": asked_at.isoformat()}, **HX)
    assert older.status_code == 200
    assert poll_url(older.content).startswith(url)  # an answer from before the request is not this test's
    assert b"Connected" not in older.content
    ClusterCredential.objects.filter(pk=key_credential.pk).update(last_test_ok=None, last_test_summary="Testing…")
    assert b'hx-trigger="every 1s"' in member_client.get(url, {"since": asked_at.isoformat()}, **HX).content
    ClusterCredential.objects.filter(pk=key_credential.pk).update(
        last_test_ok=True,
        last_tested_at=asked_at + timedelta(seconds=2),
        last_test_summary="OK: Reached the cluster, host key verified, logged in as alice; sbatch found.",
    )
    answered = member_client.get(url, {"since": asked_at.isoformat()}, **HX)
    assert f"Connected as alice on {profile.name}: SLURM answered.".encode() in answered.content
    assert b"hx-trigger" not in answered.content
    assert b"host key verified" in answered.content


def test_a_failed_test_says_what_happened_and_what_to_do(member_client, key_credential) -> None:
    asked_at = timezone.now()
    ClusterCredential.objects.filter(pk=key_credential.pk).update(
        last_test_ok=False,
        last_tested_at=asked_at + timedelta(seconds=1),
        last_test_summary="AUTH_FAILED: The cluster refused your credential.",
    )
    url = reverse("frontend:credential_status", args=[key_credential.pk])
    response = member_client.get(url, {"since": asked_at.isoformat()}, **HX)
    text = response.content.decode()
    assert "The connection test failed</strong> <code>AUTH_FAILED</code>: The cluster refused your credential." in text
    assert "~/.ssh/authorized_keys in your home on the cluster" in text
    assert "hx-trigger" not in text
    page = member_client.get(reverse("frontend:clusters")).content.decode()
    assert "<code>AUTH_FAILED</code>" in page  # the page shows the last answer too


def test_a_test_without_an_answer_stops_polling_after_a_while(member_client, key_credential) -> None:
    ClusterCredential.objects.filter(pk=key_credential.pk).update(last_test_summary="Testing…")
    url = reverse("frontend:credential_status", args=[key_credential.pk])
    response = member_client.get(url, {"since": (timezone.now() - timedelta(seconds=200)).isoformat()}, **HX)
    assert b"No answer yet" in response.content
    assert b"hx-trigger" not in response.content


def test_the_page_resumes_polling_a_pending_test(member_client, key_credential) -> None:
    ClusterCredential.objects.filter(pk=key_credential.pk).update(last_test_summary="Testing…")
    page = member_client.get(reverse("frontend:clusters"))
    assert poll_url(page.content).startswith(f"/clusters/credentials/{key_credential.pk}/status/?since=")


@pytest.mark.parametrize("since", ["", "yesterday", "2030-01-01T00:00:00"])
def test_a_poll_without_a_valid_start_time_is_refused(member_client, key_credential, since) -> None:
    url = reverse("frontend:credential_status", args=[key_credential.pk])
    response = member_client.get(url, {"since": since}, **HX)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "SINCE_INVALID"


# ------------------------------------------------------------------------------------------- the real cluster


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_page_tests_a_real_login_through_the_worker_and_shows_success(celery_worker) -> None:
    from tests.jobs.cluster_jobs import register, wait_for

    setup = register(("np_ci_clusters",))
    member = setup.members[0]
    client = setup.client(member)
    credential = ClusterCredential.objects.get(user=member, profile=setup.profile)
    page = client.get(reverse("frontend:clusters")).content.decode()
    assert sha256_fingerprint(setup.profile.pinned_host_key_lines[0]) in page

    started = client.post(reverse("frontend:credential_test", args=[credential.pk]), **HX)
    assert started.status_code == 200
    url = poll_url(started.content)

    def answered() -> str | None:
        fragment = client.get(url, **HX).content.decode()
        return None if 'hx-trigger="every 1s"' in fragment else fragment

    result = wait_for(answered, timeout_s=90, what="the connection test's answer", every_s=1.0)
    assert f"Connected as np_ci_clusters on {setup.profile.name}: SLURM answered." in result, result
