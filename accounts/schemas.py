"""API shapes for accounts. A token's secret appears only in TokenCreatedOut, once."""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema


class MeOut(Schema):
    id: int
    username: str
    email: str
    is_lab_admin: bool


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(default=90, description="1 to 366 days; null for a token that never expires")


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The secret. Shown only now: store it safely.")
