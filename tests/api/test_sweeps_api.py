"""The sweeps API (jobs/sweep_api.py): create, list, rows, CSV, plot, submit, cancel, retry; access."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from jobs.access import access_sweep, visible_sweeps
from jobs.models import Sweep
from portal.errors import NotFound
from tests.api.conftest import bearer
from tests.factories import WATER_VALUES, CredentialFactory, builtin_version

pytestmark = pytest.mark.django_db


def create_body(profile_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "template_id": builtin_version("npt-equilibration").template_id,
        "cluster_id": profile_id,
        "recipe": "cpu",
        "title": "water grid",
        "mode": "grid",
        "axes": [{"name": "temperature", "values": [300, 310, 320]}, {"name": "cutoff", "values": [10, 12]}],
        "values": WATER_VALUES,
        "resources": {"partition": "debug", "walltime_s": 600},
        "max_running": 2,
        **fields,
    }


@pytest.fixture
def sweep_id(member: User, member_client: Client) -> int:
    credential = CredentialFactory(user=member)
    response = member_client.post("/api/v1/sweeps", create_body(credential.profile_id), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_creating_a_sweep_answers_its_rows_and_where_to_upload(member_client: Client, sweep_id: int) -> None:
    body = member_client.get(f"/api/v1/sweeps/{sweep_id}").json()
    assert (body["kind"], body["template"], body["mode"], body["max_running"], body["points"]) == (
        "template",
        "npt-equilibration",
        "grid",
        2,
        6,
    )
    assert [row["values"] for row in body["rows"]][:2] == [
        {"temperature": 300, "cutoff": 10},
        {"temperature": 300, "cutoff": 12},
    ]
    assert body["inputs_job_id"] == body["rows"][0]["job_id"]
    assert body["summary"] == {"points": 6, "states": {"DRAFT": 6}, "waiting": 0}
    assert set(body["rows"][0]["energies"]) == {"TOTAL", "POTENTIAL", "KINETIC", "TEMP"}
    listed = member_client.get("/api/v1/sweeps").json()
    assert (listed["count"], listed["items"][0]["id"], listed["items"][0]["points"]) == (1, sweep_id, 6)


def test_a_point_that_does_not_render_is_422_with_its_index(member: User, member_client: Client) -> None:
    credential = CredentialFactory(user=member)
    body = create_body(credential.profile_id, axes=[{"name": "temperature", "values": [300, 5000]}])
    response = member_client.post("/api/v1/sweeps", body, content_type="application/json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["details"]["point"], error["details"]["point_values"]) == (1, {"temperature": 5000})
    too_many = create_body(credential.profile_id, mode="replicas", axes=[], replicas=501, base_seed=1)
    response = member_client.post("/api/v1/sweeps", too_many, content_type="application/json")
    assert response.status_code == 422  # the schema's bound, before the service's SWEEP_TOO_MANY_POINTS
    list_mode = create_body(credential.profile_id, mode="list")
    response = member_client.post("/api/v1/sweeps", list_mode, content_type="application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "SWEEP_AXES_UNEQUAL")


def test_the_csv_and_the_plot(member_client: Client, sweep_id: int) -> None:
    response = member_client.get(f"/api/v1/sweeps/{sweep_id}/csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="sweep-{sweep_id}.csv"'
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("index,temperature,cutoff,state,")
    assert len(lines) == 7
    plot = member_client.get(f"/api/v1/sweeps/{sweep_id}/plot?figure=last_step&axis=cutoff").json()
    assert (plot["axis"], plot["unit"], [s["label"] for s in plot["series"]]) == (
        "cutoff",
        "steps",
        ["temperature=300", "temperature=310", "temperature=320"],
    )
    assert plot["series"][0]["points"] == []  # nothing has run
    unknown = member_client.get(f"/api/v1/sweeps/{sweep_id}/plot?figure=colour")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "SWEEP_FIGURE_UNKNOWN")


def test_actions_answer_with_their_codes(member_client: Client, sweep_id: int) -> None:
    submit = member_client.post(f"/api/v1/sweeps/{sweep_id}/submit")
    assert (submit.status_code, submit.json()["error"]["code"]) == (409, "INPUTS_NOT_READY")
    retry = member_client.post(f"/api/v1/sweeps/{sweep_id}/retry-failed")
    assert (retry.status_code, retry.json()["error"]["code"]) == (409, "SWEEP_NOTHING_TO_RETRY")
    cancel = member_client.post(f"/api/v1/sweeps/{sweep_id}/cancel")
    assert cancel.status_code == 202
    assert (cancel.json()["task_id"], cancel.json()["sweep"]["cancel_requested_at"] is not None) == ("", True)
    detail = member_client.get(f"/api/v1/sweeps/{sweep_id}").json()
    assert detail["summary"]["states"] == {"CANCELLED": 6}
    again = member_client.post(f"/api/v1/sweeps/{sweep_id}/cancel")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "SWEEP_ALREADY_ENDED")


def test_another_member_gets_404_and_a_lab_admin_reads_but_may_not_act(
    sweep_id: int, other_member: User, lab_admin: User
) -> None:
    other = Client(**bearer(other_member))
    for path in ("", "/csv", "/plot"):
        response = other.get(f"/api/v1/sweeps/{sweep_id}{path}")
        assert (response.status_code, response.json()["error"]["code"]) == (404, "SWEEP_NOT_FOUND")
    assert other.get("/api/v1/sweeps").json()["count"] == 0
    admin = Client(**bearer(lab_admin))
    assert admin.get(f"/api/v1/sweeps/{sweep_id}").status_code == 200
    response = admin.post(f"/api/v1/sweeps/{sweep_id}/cancel")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "SWEEP_NOT_YOURS")


@pytest.mark.parametrize(
    ("who", "sees"), [("owner", True), ("other", False), ("admin", True), ("inactive", False), ("missing", False)]
)
def test_access_sweep_agrees_with_visible_sweeps(
    who: str, sees: bool, member: User, other_member: User, lab_admin: User, sweep_id: int
) -> None:
    users = {"owner": member, "other": other_member, "admin": lab_admin, "missing": member}
    if who == "inactive":
        User.objects.filter(pk=member.pk).update(is_active=False)
        users["inactive"] = User.objects.get(pk=member.pk)
    wanted = sweep_id if who != "missing" else Sweep.objects.order_by("-pk").first().pk + 1
    user = users[who]
    assert visible_sweeps(user).filter(pk=wanted).exists() is sees
    if sees:
        assert access_sweep(user=user, sweep_id=wanted).pk == wanted
    else:
        with pytest.raises(NotFound) as caught:
            access_sweep(user=user, sweep_id=wanted)
        assert caught.value.code == "SWEEP_NOT_FOUND"
