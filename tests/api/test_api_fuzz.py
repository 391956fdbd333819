"""A schema-driven fuzz run of the whole API (schemathesis): cases generated from the OpenAPI schema are sent
through the real WSGI application, on real PostgreSQL and Redis, by a member with a token who has a credential,
a job with an input, a staged download and a second token. No answer may be a 500, carry a status the schema does
not document, or break the schema's shape for that status.

Path ids are pointed at the member's real objects (a random id only ever finds nothing). Celery dispatch is the
one fake: a test transaction never commits, so nothing waiting for the commit is sent anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import create_api_token
from jobs.models import StagedDownload
from portal.api import api
from portal.celery import app as celery_app
from portal.wsgi import application
from tests.factories import CredentialFactory, InputFileFactory, JobFactory

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Enough cases to reach every branch of the parsing layer, few enough that all operations take well under a minute.
EXAMPLES_PER_OPERATION = 6


@pytest.fixture
def fuzz_world(db, member, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The member's token and real objects for every kind of path id."""
    monkeypatch.setattr(celery_app, "send_task", lambda *args, **kwargs: None)
    for throttle in api.throttle:  # the run sends more than a member's 600 a minute
        monkeypatch.setattr(throttle, "num_requests", 1_000_000)
    # The WSGI handler closes the database connection after each request, as in production; the test's
    # transaction must outlive them (Django's own test client disconnects the same receiver).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    credential = CredentialFactory(user=member)
    job = JobFactory(owner=member, profile=credential.profile)
    InputFileFactory(job=job, name="water.psf")
    download = StagedDownload.objects.create(job=job, relpath="out.coor", requested_by=member)
    spare_token = create_api_token(user=member, name="spare", expires_in_days=1).token
    yield {
        "headers": {"Authorization": f"Bearer {create_api_token(user=member, name='fuzz', expires_in_days=1).secret}"},
        "ids": {
            "job_id": job.pk,
            "download_id": download.pk,
            "profile_id": credential.profile_id,
            "template_id": job.template_version.template_id,
            "token_id": spare_token.pk,
        },
    }
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# The schema as the running application serves it (no database needed to read it).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
# Random generation only: the coverage phase's exhaustive boundary cases take minutes on two cores.
schema.config.phases.update(phases=["examples", "fuzzing"])


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,  # never a timing assertion: the example count bounds the run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_answers_as_its_schema_says(case, fuzz_world: dict[str, Any]) -> None:
    for name, value in fuzz_world["ids"].items():
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = value
    case.call_and_validate(headers=fuzz_world["headers"], checks=CHECKS)
