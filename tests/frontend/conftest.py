"""Shared fixtures for the page tests: a cluster profile the members can use, a logged-in client (jobs: unit_jobs)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.jobs.unit_jobs import unit_profile


@pytest.fixture
def profile(db):
    """A cluster (no contact: it is never reached in page tests) with a `debug` partition and a `cpu` recipe."""
    return unit_profile()


@pytest.fixture
def member_client(member) -> Client:
    client = Client()
    client.force_login(member)
    return client
