"""The API answers as its OpenAPI schema says: every operation routable, every error documented in the envelope,
input PostgreSQL cannot store refused as INVALID_INPUT, and another member's object a 404 whatever the request."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from jobs.models import Job
from portal.api import api
from tests.factories import ClusterProfileFactory

pytestmark = pytest.mark.django_db

SCHEMA = api.get_openapi_schema(path_prefix="/api/v1/")
OPERATIONS = sorted((path, method) for path, methods in SCHEMA["paths"].items() for method in methods)
ERROR_REF = "#/components/schemas/ErrorOut"


def error_code(response) -> str:
    return response.json()["error"]["code"]


def documented_statuses(path: str, method: str) -> set[int]:
    return {int(status) for status in SCHEMA["paths"][path][method]["responses"]}


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_every_documented_operation_reaches_its_view(member_client: Client, path: str, method: str) -> None:
    url = re.sub(r"\{name\}", "water.psf", re.sub(r"\{(\w+_id|index)\}", "1", path))
    response = getattr(member_client, method)(url, content_type="application/json")
    assert response.status_code != 405
    if response.status_code == 404:
        assert error_code(response) != "ENDPOINT_NOT_FOUND"


def test_refresh_and_discover_of_all_my_jobs_are_reachable(member_client: Client) -> None:
    assert member_client.post("/api/v1/jobs/refresh").json() == {"task_ids": [], "coalesced": []}
    missing = member_client.post("/api/v1/jobs/discover", {"cluster_id": 999_999}, content_type="application/json")
    assert (missing.status_code, error_code(missing)) == (404, "CLUSTER_NOT_FOUND")


def test_a_path_the_api_does_not_have_is_a_404_in_the_envelope(member_client: Client) -> None:
    for url in ("/api/v1/jobs/abc", "/api/v1/jobs/-1/events", "/api/v1/nothing", "/api/v1/sweeps/1%0A/csv"):
        response = member_client.get(url)
        assert (response.status_code, error_code(response)) == (404, "ENDPOINT_NOT_FOUND")


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_every_operation_documents_its_errors_in_the_envelope(path: str, method: str) -> None:
    operation = SCHEMA["paths"][path][method]
    expected = {422, 429}
    if operation.get("security"):
        expected |= {401} | ({403} if method != "get" else set())
    if "{" in path:
        expected.add(404)
    if "requestBody" in operation and "application/json" in operation["requestBody"]["content"]:
        expected.add(400)
    assert expected <= documented_statuses(path, method)
    responses = {int(status): response for status, response in operation["responses"].items()}
    for status in expected:
        content = responses[status]["content"]["application/json"]
        assert content["schema"] == {"$ref": ERROR_REF}


def test_the_error_envelope_schema_has_code_message_and_details() -> None:
    body = SCHEMA["components"]["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"code", "message", "details"}
    assert set(body["required"]) == {"code", "message"}


def test_conflicts_are_documented_where_they_can_happen() -> None:
    for path, method in [
        ("/api/v1/jobs/{job_id}/submit", "post"),
        ("/api/v1/jobs/{job_id}/cancel", "post"),
        ("/api/v1/jobs/{job_id}/downloads/{download_id}/content", "get"),
        ("/api/v1/tokens", "post"),
    ]:
        assert 409 in documented_statuses(path, method)
    assert {400, 409, 413} <= documented_statuses("/api/v1/jobs/{job_id}/uploads/{name}", "put")


def test_a_body_that_is_not_json_is_a_400_in_the_envelope(member_client: Client) -> None:
    response = member_client.post("/api/v1/tokens", "{not json", content_type="application/json")
    assert (response.status_code, error_code(response)) == (400, "MALFORMED_REQUEST")


def test_validation_errors_use_the_envelope_with_their_fields(member_client: Client) -> None:
    response = member_client.post("/api/v1/tokens", {"name": ""}, content_type="application/json")
    assert (response.status_code, error_code(response)) == (422, "INVALID_INPUT")
    assert [p["field"] for p in response.json()["error"]["details"]["problems"]] == ["body.payload.name"]


def test_a_page_far_past_the_end_is_refused_not_a_database_error(member_client: Client) -> None:
    response = member_client.get("/api/v1/jobs", {"page": str(10**20)})
    assert (response.status_code, error_code(response)) == (422, "INVALID_INPUT")
    assert member_client.get("/api/v1/jobs", {"page": "1000000"}).json()["items"] == []


# --- input PostgreSQL cannot store ------------------------------------------------------------------------------


def assert_refused_as_unstorable(response, field: str) -> None:
    assert (response.status_code, error_code(response)) == (422, "INVALID_INPUT")
    assert [p["field"] for p in response.json()["error"]["details"]["problems"]] == [field]


@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])
def test_unstorable_text_in_a_json_body_is_refused(member_client: Client, text: str) -> None:
    body = json.dumps({"name": text, "expires_in_days": 1})  # ensure_ascii: the surrogate travels as \\ud800
    response = member_client.post("/api/v1/tokens", body, content_type="application/json")
    assert_refused_as_unstorable(response, "body.name")


def test_unstorable_text_nested_in_a_json_body_is_refused(member_client: Client, own_job: Job) -> None:
    body = json.dumps({"values": {"structure": ["ok", "x\x00"]}})
    response = member_client.put(f"/api/v1/jobs/{own_job.pk}/values", body, content_type="application/json")
    assert_refused_as_unstorable(response, "body.values.structure.1")


def test_a_nul_in_the_query_string_is_refused(member_client: Client) -> None:
    assert_refused_as_unstorable(member_client.get("/api/v1/jobs?q=%00"), "query.q")


def test_a_nul_in_a_path_parameter_is_refused(member_client: Client, own_job: Job) -> None:
    response = member_client.get(f"/api/v1/jobs/{own_job.pk}/uploads/water%00.psf", {"size": "10"})
    assert_refused_as_unstorable(response, "path")


@pytest.mark.parametrize("name", ["water\x00.psf", "water&#0;.psf"])
def test_an_uploaded_file_name_loses_what_cannot_be_stored(member_client: Client, own_job: Job, name: str) -> None:
    """Django's multipart parser drops unprintable characters from file names before anything sees them."""
    upload = SimpleUploadedFile(name, b"PSF\n")
    response = member_client.post(f"/api/v1/jobs/{own_job.pk}/inputs", {"file": upload})
    assert response.status_code == 202
    assert "\x00" not in own_job.inputs.get().name


def test_a_nul_in_a_page_form_field_is_refused_with_the_error_page(client: Client) -> None:
    response = client.post("/login/", {"username": "alice\x00", "password": "x"})
    assert response.status_code == 422
    assert b"INVALID_INPUT" in response.content


def test_a_nul_in_an_htmx_request_is_refused_with_the_envelope(client: Client, member) -> None:
    client.force_login(member)
    response = client.get("/jobs/", {"q": "\x00"}, headers={"HX-Request": "true"})
    assert_refused_as_unstorable(response, "query.q")


# --- access before validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("put", "values", {"values": "not an object"}),
        ("put", "values", "{not json"),
        ("post", "downloads", {}),
        ("post", "restart", {"submit": "perhaps"}),
        ("post", "next-stage", {"template_id": "first"}),
        ("get", "uploads/water.psf", None),  # `size` missing
        ("get", "energies", None),
    ],
)
def test_another_members_job_is_a_404_whatever_the_request(
    member_client: Client, others_job: Job, own_job: Job, method: str, suffix: str, body
) -> None:
    send = getattr(member_client, method)
    for job, expected in ((others_job, 404), (own_job, None)):
        url = f"/api/v1/jobs/{job.pk}/{suffix}"
        if body is None:
            response = send(url)
        else:
            response = send(url, body if isinstance(body, str) else json.dumps(body), content_type="application/json")
        if expected == 404:
            assert (response.status_code, error_code(response)) == (404, "JOB_NOT_FOUND")
        else:
            assert response.status_code != 404


def test_a_cluster_the_member_may_not_use_is_a_404_whatever_the_body(member_client: Client) -> None:
    hidden = ClusterProfileFactory(is_active=False)
    response = member_client.put(f"/api/v1/clusters/{hidden.pk}/credential", {}, content_type="application/json")
    assert (response.status_code, error_code(response)) == (404, "CLUSTER_NOT_FOUND")
