"""API endpoints: who am I, and my personal access tokens."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from accounts import access, selectors, services
from accounts.models import ApiToken, User
from accounts.schemas import MeOut, TokenCreatedOut, TokenIn, TokenOut
from portal.schemas import error_responses

router = Router(tags=["account"])


@router.get("/me", response=MeOut)
def me(request: HttpRequest) -> User:
    return request.auth


@router.get("/tokens", response=list[TokenOut])
def list_tokens(request: HttpRequest) -> list[ApiToken]:
    return list(selectors.own_api_tokens(request.auth))


@router.post("/tokens", response={201: TokenCreatedOut, **error_responses(409)})
def create_token(request: HttpRequest, payload: TokenIn) -> Status:
    issued = services.create_api_token(
        user=request.auth,
        name=payload.name,
        expires_in_days=payload.expires_in_days,
        calling_token=getattr(request, "api_token", None),
    )
    return Status(201, TokenCreatedOut(**TokenOut.from_orm(issued.token).model_dump(), token=issued.secret))


@router.delete("/tokens/{int:token_id}", response=TokenOut)
def revoke_token(request: HttpRequest, token_id: int) -> ApiToken:
    token = access.access_api_token(user=request.auth, token_id=token_id)
    return services.revoke_api_token(token=token)
