"""The one permission rule for API tokens: who may load a token, as an object and a queryset."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import ApiToken, User
from portal.errors import NotFound


def visible_api_tokens(user: User) -> QuerySet[ApiToken]:
    """The tokens `user` may see: their own; a lab admin sees every token."""
    if not user.is_active:
        return ApiToken.objects.none()
    if user.is_lab_admin:
        return ApiToken.objects.all()
    return ApiToken.objects.filter(user=user)


def access_api_token(*, user: User, token_id: int, for_update: bool = False) -> ApiToken:
    """Load one token for `user`. Raises NotFound for a missing token and for someone else's."""
    queryset = visible_api_tokens(user)
    if for_update:
        queryset = queryset.select_for_update()
    token = queryset.filter(pk=token_id).first()
    if token is None:
        raise NotFound("No such API token.", code="TOKEN_NOT_FOUND")
    return token
