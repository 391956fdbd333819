"""Secrets at rest: Fernet encryption under a rotatable key set, and the model field that uses it.

Keys come from `PORTAL_CREDENTIAL_KEYS` (url-safe base64 Fernet keys, comma-separated, newest
first), separate from Django's SECRET_KEY. A stored value reads `<key id>:<fernet token>`, where
the key id is a short digest of the key that encrypted it, so a rotation can tell what is left to
re-encrypt. Model fields hold `SealedSecret`s: their repr and str never show the secret, and only
`reveal()` decrypts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class SecretDecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


@dataclass(frozen=True)
class SealedSecret:
    """A secret as stored: ciphertext only. `reveal()` decrypts it; printing never shows it."""

    ciphertext: str = field(repr=False)

    def __str__(self) -> str:
        return "[encrypted secret]"

    @property
    def key_id(self) -> str:
        return self.ciphertext.partition(":")[0]

    def reveal(self) -> str:
        """The plaintext. Call only where the secret is used (the task that connects)."""
        return decrypt(self.ciphertext)


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@cache
def _keyring(keys: tuple[str, ...]) -> tuple[MultiFernet, str]:
    if not keys:
        raise RuntimeError("PORTAL_CREDENTIAL_KEYS is empty: set at least one Fernet key")
    return MultiFernet([Fernet(key.encode()) for key in keys]), key_id(keys[0])


def configured_keys() -> tuple[str, ...]:
    return tuple(settings.CREDENTIAL_KEYS)


def encrypt(plaintext: str) -> str:
    fernet, newest_id = _keyring(configured_keys())
    return f"{newest_id}:{fernet.encrypt(plaintext.encode()).decode()}"


def decrypt(stored: str) -> str:
    """Raises SecretDecryptionError when no configured key opens it."""
    fernet, _ = _keyring(configured_keys())
    _, _, token = stored.partition(":")
    try:
        return fernet.decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError("a stored secret cannot be decrypted with the configured keys") from exc


def newest_key_id() -> str:
    return _keyring(configured_keys())[1]


def rotate(sealed: SealedSecret) -> SealedSecret:
    """The same secret encrypted under the newest key. Raises SecretDecryptionError."""
    fernet, newest_id = _keyring(configured_keys())
    _, _, token = sealed.ciphertext.partition(":")
    try:
        return SealedSecret(f"{newest_id}:{fernet.rotate(token.encode()).decode()}")
    except InvalidToken as exc:
        raise SecretDecryptionError("a stored secret cannot be decrypted with the configured keys") from exc


class EncryptedSecretField(models.TextField):
    """A secret column: assign a plain str (encrypted on save) or a SealedSecret; reads give SealedSecret."""

    description = "A secret encrypted with the portal's credential keys"

    def from_db_value(self, value: str | None, expression: object, connection: object) -> SealedSecret | None:
        return None if value is None else SealedSecret(value)

    def to_python(self, value: object) -> SealedSecret | str | None:
        return value  # type: ignore[return-value]  # plaintext stays plaintext until saved

    def get_prep_value(self, value: object) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, SealedSecret):
            return value.ciphertext
        if isinstance(value, str):
            return encrypt(value)
        raise TypeError("an encrypted secret field takes a str or a SealedSecret")

    def value_to_string(self, obj: models.Model) -> str:
        return "[encrypted secret]"  # serialization (dumpdata) never carries the secret
