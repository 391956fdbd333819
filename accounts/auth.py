"""django-ninja authentication by personal access token (`Authorization: Bearer np_...`)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from accounts.models import User
from accounts.services import authenticate_api_token


class ApiTokenAuth(HttpBearer):
    """Without a bearer header, falls through to the next method (the session); with one, it must be valid."""

    def authenticate(self, request: HttpRequest, token: str) -> User:
        user = authenticate_api_token(secret=token)
        request.user = user
        return user
