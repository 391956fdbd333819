"""Writes on clusters: members' credentials (checked, encrypted, replaced whole or not at all)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User
from clusters.crypto import SealedSecret, encrypt
from clusters.keys import UnusableKey, check_private_key, generate_ed25519_key
from clusters.models import ClusterCredential, ClusterProfile, validate_remote_username
from portal.errors import InvalidInput

MAX_PASSWORD_LENGTH = 1024


def _checked_username(remote_username: str) -> str:
    remote_username = remote_username.strip()
    try:
        validate_remote_username(remote_username)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], code="REMOTE_USERNAME_INVALID") from exc
    return remote_username


@transaction.atomic
def _replace_credential(
    *, user: User, profile: ClusterProfile, remote_username: str, auth_kind: str, secret: str,
    passphrase: str | None, public_key: str,
) -> ClusterCredential:  # fmt: skip
    credential, _ = ClusterCredential.objects.update_or_create(
        user=user,
        profile=profile,
        defaults={
            "remote_username": remote_username,
            "auth_kind": auth_kind,
            "secret": SealedSecret(encrypt(secret)),
            "passphrase": SealedSecret(encrypt(passphrase)) if passphrase else None,
            "public_key": public_key,
            "last_tested_at": None,
            "last_test_ok": None,
            "last_test_summary": "",
        },
    )
    return credential


def save_key_credential(
    *, user: User, profile: ClusterProfile, remote_username: str, private_key: str, passphrase: str | None
) -> ClusterCredential:
    """Store (or replace) a member's key. Raises InvalidInput with the key's problem as its code."""
    username = _checked_username(remote_username)
    try:
        checked = check_private_key(private_key, passphrase or None)
    except UnusableKey as exc:
        raise InvalidInput(str(exc), code=exc.code) from exc
    return _replace_credential(
        user=user, profile=profile, remote_username=username, auth_kind=ClusterCredential.AuthKind.KEY,
        secret=private_key.strip() + "\n", passphrase=passphrase or None, public_key=checked.public_key,
    )  # fmt: skip


def save_password_credential(
    *, user: User, profile: ClusterProfile, remote_username: str, password: str
) -> ClusterCredential:
    """Store (or replace) a member's password login. Raises InvalidInput."""
    username = _checked_username(remote_username)
    if not password or len(password) > MAX_PASSWORD_LENGTH or "\n" in password:
        raise InvalidInput("Enter the cluster password (one line).", code="PASSWORD_INVALID")
    return _replace_credential(
        user=user, profile=profile, remote_username=username, auth_kind=ClusterCredential.AuthKind.PASSWORD,
        secret=password, passphrase=None, public_key="",
    )  # fmt: skip


def generate_key_credential(
    *, user: User, profile: ClusterProfile, remote_username: str, passphrase: str | None
) -> ClusterCredential:
    """Make a new ed25519 key for the member; its public half is shown for them to install."""
    username = _checked_username(remote_username)
    generated = generate_ed25519_key(comment=f"namd-portal:{user.username}@{profile.slug}", passphrase=passphrase)
    return _replace_credential(
        user=user, profile=profile, remote_username=username, auth_kind=ClusterCredential.AuthKind.KEY,
        secret=generated.private_key, passphrase=passphrase or None, public_key=generated.public_key,
    )  # fmt: skip


def delete_credential(*, credential: ClusterCredential) -> None:
    credential.delete()
