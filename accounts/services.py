"""Writes on accounts: issuing, revoking and authenticating personal API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.tokens import looks_like_token, new_token_secret, token_digest, token_prefix
from portal.errors import Conflict, Forbidden, InvalidInput, Unauthenticated

# Touch last_used_at at most this often, so a busy script does not write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_TOKEN_LIFETIME_DAYS = 366


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown to its owner once, never stored


def create_api_token(
    *, user: User, name: str, expires_in_days: int | None, calling_token: ApiToken | None = None
) -> IssuedToken:
    """Issue a token for `user`; asked with `calling_token` (not a session), it must expire, and no later than that.

    Raises InvalidInput (TOKEN_NAME_REQUIRED, TOKEN_EXPIRY_INVALID), Forbidden (TOKEN_OUTLIVES_CALLER),
    Conflict (TOKEN_NAME_TAKEN).
    """
    name = name.strip()
    if not name:
        raise InvalidInput("Give the token a name, e.g. the script that will use it.", code="TOKEN_NAME_REQUIRED")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_LIFETIME_DAYS:
        raise InvalidInput(
            f"A token expires after 1 to {MAX_TOKEN_LIFETIME_DAYS} days, or never.", code="TOKEN_EXPIRY_INVALID"
        )
    secret = new_token_secret()
    now = timezone.now()
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
    if calling_token is not None and _outlives(expires_at, calling_token.expires_at):
        # A leaked short-lived token must not be able to mint a longer-lived (or permanent) one.
        raise Forbidden(
            "A token can create only tokens that expire no later than itself: ask for fewer days, "
            "or create the token on the Account page.",
            code="TOKEN_OUTLIVES_CALLER",
        )
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                user=user,
                name=name,
                prefix=token_prefix(secret),
                digest=token_digest(secret),
                created_at=now,
                expires_at=expires_at,
            )
    except IntegrityError as exc:
        raise Conflict(f"You already have a live token named '{name}'.", code="TOKEN_NAME_TAKEN") from exc
    return IssuedToken(token=token, secret=secret)


def _outlives(expires_at: datetime | None, limit: datetime | None) -> bool:
    """Whether a token expiring at `expires_at` would outlive one expiring at `limit`; a permanent one always does
    (even past a permanent caller: only a session makes a token that never expires)."""
    if expires_at is None:
        return True
    return limit is not None and expires_at > limit


def revoke_api_token(*, token: ApiToken) -> ApiToken:
    """Revoke a token; revoking a revoked token changes nothing."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    return token


def revoke_all_api_tokens(*, user: User) -> int:
    """Revoke every live token of `user`: called wherever a password changes (`accounts.forms`, the
    `changepassword` command), so a token made before must not outlast it. Returns how many were revoked."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def authenticate_api_token(*, secret: str) -> ApiToken:
    """The live token with this secret, of an active user. Raises Unauthenticated with a code saying why not."""
    if not looks_like_token(secret):
        raise Unauthenticated("The API token is not valid.", code="TOKEN_INVALID")
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(secret)).first()
    if token is None or not token.user.is_active:
        raise Unauthenticated("The API token is not valid.", code="TOKEN_INVALID")
    if token.is_revoked:
        raise Unauthenticated("The API token was revoked. Create a new one.", code="TOKEN_REVOKED")
    now = timezone.now()
    if token.is_expired(now=now):
        raise Unauthenticated("The API token has expired. Create a new one.", code="TOKEN_EXPIRED")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
