"""django-ninja authentication by personal access token (`Authorization: Bearer np_...`)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from accounts.models import User
from accounts.services import authenticate_api_token


class ApiTokenAuth(HttpBearer):
    """Without a bearer header, falls through to the next method (the session); with one, it must be valid.

    The token itself is kept as `request.api_token` (None under a session): what a token may do can depend on it.
    """

    def authenticate(self, request: HttpRequest, token: str) -> User:
        api_token = authenticate_api_token(secret=token)
        request.user = api_token.user
        request.api_token = api_token  # type: ignore[attr-defined]
        return api_token.user
