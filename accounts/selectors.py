"""User-scoped reads on accounts."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import ApiToken, User


def own_api_tokens(user: User) -> QuerySet[ApiToken]:
    """The tokens `user` created, newest first (revoked ones included, marked)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at")
