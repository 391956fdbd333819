"""The shape of personal access tokens: generating a secret and deriving its stored digest.

A token reads `np_<40 url-safe characters>`; the portal keeps only its SHA-256 digest and the
first characters (the prefix) so a person can tell tokens apart in a list.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_MARK = "np_"  # noqa: S105 (a public marker, not a secret)
PREFIX_LENGTH = 10


def new_token_secret() -> str:
    """A fresh token secret with about 240 bits of randomness."""
    return TOKEN_MARK + secrets.token_urlsafe(30)


def token_digest(secret: str) -> str:
    """The SHA-256 hex digest stored in place of the secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_prefix(secret: str) -> str:
    return secret[:PREFIX_LENGTH]


def looks_like_token(secret: str) -> bool:
    """Cheap shape check before any database lookup."""
    return secret.startswith(TOKEN_MARK) and 20 <= len(secret) <= 200 and secret.isascii()
