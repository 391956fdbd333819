"""The pipeline-run API (jobs/pipeline_api.py) without a cluster: create, preview, list, detail; access. The
cluster side (submit, a failed step, resume, a TIMEOUT continuation) runs in tests/jobs/test_pipelines_on_cluster.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from templates_app.builtin import BUILTIN_PROTOCOL_SLUG, load_builtin_templates
from templates_app.models import Protocol
from tests.api.conftest import bearer
from tests.factories import WATER_VALUES, CredentialFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def body(member: User) -> dict[str, Any]:
    load_builtin_templates()
    credential = CredentialFactory(user=member)
    return {
        "protocol_id": Protocol.objects.get(slug=BUILTIN_PROTOCOL_SLUG).pk,
        "cluster_id": credential.profile_id,
        "recipe": "cpu",
        "title": "water, three segments",
        "values": {**WATER_VALUES, "run_steps": 100, "minimize_steps": 50},
        "stage_values": {"3": {"run_steps": 200}},
        "resources": {"partition": "debug", "walltime_s": 600},
    }


def create(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/pipelines", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def test_the_preview_renders_every_step_and_sums_their_cost_without_making_anything(
    member_client: Client, body: dict[str, Any]
) -> None:
    response = member_client.post("/api/v1/pipelines/preview", body, content_type="application/json")

    assert response.status_code == 200, response.content
    preview = response.json()
    assert [step["label"] for step in preview["steps"]] == [
        "minimization",
        "equilibration",
        "production 1/3",
        "production 2/3",
        "production 3/3",
    ]
    assert preview["problem_count"] == 0
    assert all(step["config"] and step["batch_script"] for step in preview["steps"])
    assert re.search(r"^run\s+200$", preview["steps"][2]["config"], re.MULTILINE)  # the stage's value wins
    hours = sum(float(step["cost"]["core_hours"]) for step in preview["steps"])
    assert float(preview["total_cost"]["core_hours"]) == pytest.approx(hours)
    assert member_client.get("/api/v1/pipelines").json()["count"] == 0


def test_the_preview_answers_a_value_no_stage_takes_as_a_problem_with_its_code(
    member_client: Client, body: dict[str, Any]
) -> None:
    body["values"]["temprature"] = 300
    preview = member_client.post("/api/v1/pipelines/preview", body, content_type="application/json").json()
    assert preview["steps"] == []
    assert [problem["code"] for problem in preview["problems"]] == ["VALUE_UNKNOWN_VARIABLE"]
    assert "temprature" in preview["problems"][0]["message"]


def test_create_then_read_the_run_and_its_steps(member_client: Client, body: dict[str, Any]) -> None:
    run = create(member_client, body)

    detail = member_client.get(f"/api/v1/pipelines/{run['id']}").json()
    assert (detail["state"], detail["steps_done"], detail["steps_total"]) == ("DRAFT", 0, 5)
    assert [step["position"] for step in detail["steps"]] == [1, 2, 3, 4, 5]
    assert detail["upload_job_id"] == detail["steps"][0]["id"]
    assert {problem["code"] for problem in detail["input_problems"]} == {"INPUT_MISSING"}


def test_the_list_costs_the_same_queries_for_one_run_or_six(member_client: Client, body: dict[str, Any]) -> None:
    create(member_client, body)
    with CaptureQueriesContext(connection) as one:
        assert member_client.get("/api/v1/pipelines").json()["count"] == 1
    for _ in range(5):
        create(member_client, body)
    with CaptureQueriesContext(connection) as six:
        listed = member_client.get("/api/v1/pipelines").json()

    assert listed["count"] == 6
    assert {item["steps_total"] for item in listed["items"]} == {5}
    assert len(six.captured_queries) == len(one.captured_queries)


def test_another_members_run_is_not_found(member_client: Client, body: dict[str, Any], other_member: User) -> None:
    run = create(member_client, body)
    other = Client(**bearer(other_member))

    assert other.get(f"/api/v1/pipelines/{run['id']}").status_code == 404
    assert other.post(f"/api/v1/pipelines/{run['id']}/cancel").status_code == 404
    assert other.get("/api/v1/pipelines").json()["count"] == 0
    unknown = {**body, "protocol_id": body["protocol_id"] + 1000}
    refused = other.post("/api/v1/pipelines/preview", unknown, content_type="application/json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "PROTOCOL_NOT_FOUND")
