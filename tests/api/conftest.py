"""Fixtures of the API tests: a member's token, and their job beside another member's."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from accounts.services import create_api_token
from jobs.models import Job
from tests.factories import CredentialFactory, JobFactory


def bearer(user: User) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {create_api_token(user=user, name='api tests', expires_in_days=1).secret}"}


@pytest.fixture
def member_client(member: User) -> Client:
    """A script of `member`'s: token authentication, no session."""
    return Client(**bearer(member))


@pytest.fixture
def own_job(member: User) -> Job:
    """A DRAFT job of `member` on a cluster they have a credential for."""
    credential = CredentialFactory(user=member)
    return JobFactory(owner=member, profile=credential.profile)


@pytest.fixture
def others_job(other_member: User) -> Job:
    """A DRAFT job `member` may not see."""
    return JobFactory(owner=other_member)
