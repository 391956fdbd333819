"""Writes on accounts: issuing, revoking and authenticating personal API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.tokens import looks_like_token, new_token_secret, token_digest, token_prefix
from portal.errors import Conflict, InvalidInput, Unauthenticated

# Touch last_used_at at most this often, so a busy script does not write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_TOKEN_LIFETIME_DAYS = 366


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown to its owner once, never stored


def create_api_token(*, user: User, name: str, expires_in_days: int | None) -> IssuedToken:
    """Issue a token for `user`. Raises InvalidInput, Conflict (a live token has that name)."""
    name = name.strip()
    if not name:
        raise InvalidInput("Give the token a name, e.g. the script that will use it.", code="TOKEN_NAME_REQUIRED")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_LIFETIME_DAYS:
        raise InvalidInput(
            f"A token expires after 1 to {MAX_TOKEN_LIFETIME_DAYS} days, or never.", code="TOKEN_EXPIRY_INVALID"
        )
    secret = new_token_secret()
    now = timezone.now()
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                user=user,
                name=name,
                prefix=token_prefix(secret),
                digest=token_digest(secret),
                created_at=now,
                expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
            )
    except IntegrityError as exc:
        raise Conflict(f"You already have a live token named '{name}'.", code="TOKEN_NAME_TAKEN") from exc
    return IssuedToken(token=token, secret=secret)


def revoke_api_token(*, token: ApiToken) -> ApiToken:
    """Revoke a token; revoking a revoked token changes nothing."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    return token


def authenticate_api_token(*, secret: str) -> User:
    """The active user owning this token. Raises Unauthenticated with a code saying why not."""
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
    return token.user
