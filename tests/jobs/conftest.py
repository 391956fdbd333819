"""Fixtures of the fast job tests: the fake member session behind `jobs.remote.member_session`, Celery dispatch."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from clusters.models import ClusterCredential
from jobs import remote
from portal.celery import app as celery_app
from tests.factories import CredentialFactory
from tests.fake_cluster import FakeMemberSession


@pytest.fixture
def fake_cluster(monkeypatch: pytest.MonkeyPatch) -> FakeMemberSession:
    """One fake member session per test, returned by every `jobs.remote.member_session(job)` call."""
    session = FakeMemberSession()
    monkeypatch.setattr(remote, "member_session", session.for_job)
    return session


@pytest.fixture
def sent_tasks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """Tasks sent to the broker, as (task name, args); nothing reaches Redis or a worker. A test runs inside a
    transaction that never commits, so sends waiting for the commit are made at once."""
    sent: list[tuple[str, tuple[Any, ...]]] = []

    def send_task(name: str, args: Any = None, **options: Any) -> None:
        sent.append((name, tuple(args or ())))

    monkeypatch.setattr(celery_app, "send_task", send_task)
    monkeypatch.setattr(transaction, "on_commit", lambda callback, using=None, robust=False: callback())
    return sent


@pytest.fixture
def credential(db: None) -> ClusterCredential:
    """A member's password login on a cluster with a `debug` partition and a `cpu` recipe."""
    return CredentialFactory()
