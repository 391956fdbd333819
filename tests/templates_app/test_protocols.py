"""Protocols: saved whole only when usable (the service and the admin), and offered over the API by the access rule."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Permission

from accounts.services import create_api_token
from portal.errors import InvalidInput, NotFound
from templates_app.access import access_protocol, visible_protocols
from templates_app.builtin import BUILTIN_PROTOCOL_SLUG, load_builtin_templates
from templates_app.models import Protocol, ProtocolStage, Template
from templates_app.protocol_services import protocol_draft_problems, save_protocol, stage_rules
from templates_app.services import save_template_version
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def builtin() -> Protocol:
    load_builtin_templates()
    return Protocol.objects.get(slug=BUILTIN_PROTOCOL_SLUG)


def stage(position: int, slug: str, continuation: str = "restart", **fields: Any) -> ProtocolStage:
    return ProtocolStage(
        position=position,
        name=fields.pop("name", slug),
        template=Template.objects.get(slug=slug),
        continuation=continuation,
        **fields,
    )


def minimize_then_produce(**production: Any) -> list[ProtocolStage]:
    return [
        stage(1, "vacuum-minimization", "first", values={"output_name": "min"}),
        stage(2, "production-restart", values={"output_name": "prod"}, **production),
    ]


def problems_of(stages: list[ProtocolStage], shared_values: Any = None) -> list[str]:
    found = protocol_draft_problems(shared_values={} if shared_values is None else shared_values, stages=stages)
    return [problem["problem"] for problem in found]


# ------------------------------------------------------------------ the service: every problem, or saved whole


def test_a_usable_protocol_is_saved_with_its_stages(builtin) -> None:
    protocol = save_protocol(
        protocol=Protocol(name="Min and prod", slug="min-prod", shared_values={"temperature": 310.0}),
        stages=minimize_then_produce(repeat=2, resources={"walltime_s": 7200, "account": None}),
    )
    assert list(protocol.stages.values_list("position", "template__slug", "repeat", "resources")) == [
        (1, "vacuum-minimization", 1, {}),
        (2, "production-restart", 2, {"walltime_s": 7200, "account": None}),
    ]
    rules = stage_rules(protocol)
    assert [rule.values for rule in rules] == [
        {"temperature": 310.0, "output_name": "min"},
        {"temperature": 310.0, "output_name": "prod"},
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s.pop(), None),  # one stage is a protocol
        (lambda s: s.clear(), "A protocol has at least one stage."),
        (lambda s: setattr(s[0], "continuation", "restart"), "the first stage starts from the member's inputs"),
        (lambda s: setattr(s[1], "position", 1), "Two stages have position 1"),
        (lambda s: setattr(s[1], "repeat", 0), "repeat it 1 to 200 times"),
        (lambda s: s[1].values.update(steps=5), "its template has no variable 'steps'"),
        (lambda s: s[1].values.update(run_steps="many"), "run_steps: must be a whole number"),
        (lambda s: setattr(s[1], "values", ["run_steps"]), "its values are an object"),
        (lambda s: s[1].resources.update(cores=4), "resource 'cores' is none the portal knows"),
        (lambda s: s[1].resources.update(walltime_s=10), "resource 'walltime_s' is a whole number of at least 60"),
        (lambda s: s[1].resources.update(nodes=True), "resource 'nodes' is a whole number of at least 1"),
        (lambda s: s[1].resources.update(partition="a b"), "resource 'partition' is a SLURM name"),
        (lambda s: s[0].values.update(output_name="min.1"), "Stage 1 (vacuum-minimization): output_name: must match"),
        # a name of 40 characters fits, but the plan adds _1, _2 to a repeated stage's outputs
        (
            lambda s: (setattr(s[1], "repeat", 2), s[1].values.update(output_name="p" * 40)),
            "Step 2 (production-restart 1/2): output_name: must match",
        ),
    ],
)
def test_each_problem_is_named(builtin, change, problem: str | None) -> None:
    stages = minimize_then_produce(resources={})
    change(stages)
    found = problems_of(stages)
    if problem is None:
        assert found == []
    else:
        assert [text for text in found if problem in text] != [], found


def test_restart_continuation_needs_a_template_that_reads_restart_files(builtin) -> None:
    stages = [
        stage(1, "production-restart", "first"),
        stage(2, "vacuum-minimization", values={"output_name": "again"}),
    ]
    assert problems_of(stages) == [
        "Stage 2 (vacuum-minimization): its template reads no restart file (no variable for bincoordinates, "
        "binvelocities or extendedSystem); continue it CHARMM-GUI's way or change the template."
    ]


def test_shared_values_reach_the_stages_with_the_variable_and_are_checked_there(builtin) -> None:
    assert problems_of(minimize_then_produce(), {"ensemble": "NVT"}) == []
    assert problems_of(minimize_then_produce(), {"ensemble": "NXT"}) == [
        "Stage 2 (production-restart): ensemble: must be one of NVT, NPT"
    ]
    assert problems_of(minimize_then_produce(), {"pressure": 1}) == [
        "Shared value 'pressure': no stage's template has this variable."
    ]
    assert problems_of(minimize_then_produce(), ["temperature"]) == [
        "Shared values are an object of variable names and values."
    ]


def test_a_stage_whose_template_has_no_version_is_refused(builtin) -> None:
    Template.objects.create(name="Empty", slug="empty")
    assert problems_of([stage(1, "empty", "first")]) == [
        "Stage 1 (empty): its template 'Empty' has no version yet; save the template first."
    ]


def test_a_refused_protocol_is_coded_and_leaves_the_saved_one_as_it_was(builtin) -> None:
    before = list(builtin.stages.values_list("pk", "position", "repeat"))
    broken = [stage(1, "vacuum-minimization", "restart"), stage(2, "npt-equilibration", values={"cell_x": -1})]
    with pytest.raises(InvalidInput) as refused:
        save_protocol(protocol=builtin, stages=broken)
    assert refused.value.code == "PROTOCOL_INVALID"
    assert refused.value.http_status == 422
    assert [p["field"] for p in refused.value.details["problems"]] == ["stages.2"]
    assert refused.value.user_message.startswith(
        "The protocol cannot be used as it stands: Stage 2 (npt-equilibration)"
    )
    assert list(builtin.stages.values_list("pk", "position", "repeat")) == before


def test_saving_replaces_the_stages_so_positions_may_swap(builtin) -> None:
    stages = list(builtin.stages.all())
    swapped = [stages[0], stages[2], stages[1]]
    for position, item in enumerate(swapped, start=1):
        item.position = position
    swapped[1].continuation, swapped[1].repeat = "restart", 1
    save_protocol(protocol=builtin, stages=swapped)
    assert list(builtin.stages.values_list("position", "template__slug")) == [
        (1, "vacuum-minimization"),
        (2, "production-restart"),
        (3, "npt-equilibration"),
    ]


def test_a_later_template_version_is_what_the_rules_read(builtin) -> None:
    production = Template.objects.get(slug="production-restart")
    latest = production.versions.order_by("-number").first()
    variables = [{**v, "default": 1000} if v["name"] == "run_steps" else v for v in latest.variables]
    save_template_version(template=production, body=latest.body, variables=variables, user=None)
    rules = stage_rules(builtin)
    assert next(spec.default for spec in rules[2].specs if spec.name == "run_steps") == 1000


# ------------------------------------------------------------------ the admin

ADD_URL = "/admin/templates_app/protocol/add/"


def admin_form(protocol: dict[str, Any], stages: list[dict[str, Any]], *, initial: int = 0) -> dict[str, Any]:
    data = {
        "name": protocol.get("name", "Two steps"),
        "slug": protocol.get("slug", "two-steps"),
        "description": "",
        "family": "",
        "shared_values": json.dumps(protocol.get("shared_values", {})),
        "stages-TOTAL_FORMS": str(len(stages)),
        "stages-INITIAL_FORMS": str(initial),
        "stages-MIN_NUM_FORMS": "0",
        "stages-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(stages):
        fields = {
            "position": row["position"],
            "name": row["name"],
            "template": Template.objects.get(slug=row["slug"]).pk,
            "repeat": row.get("repeat", 1),
            "continuation": row["continuation"],
            "input_variable": row.get("input_variable", "inputname"),
            "values": json.dumps(row.get("values", {})),
            "resources": json.dumps(row.get("resources", {})),
            "recipe_name": row.get("recipe_name", ""),
        }
        if "id" in row:
            fields |= {"id": row["id"], "protocol": row["protocol"]}
        if row.get("delete"):
            fields["DELETE"] = "on"
        data |= {f"stages-{index}-{name}": value for name, value in fields.items()}
    return data


TWO_STAGES = [
    {"position": 1, "name": "minimize", "slug": "vacuum-minimization", "continuation": "first"},
    {
        "position": 2,
        "name": "produce",
        "slug": "production-restart",
        "continuation": "restart",
        "repeat": 2,
        "values": {"run_steps": 100},
    },
]


def test_the_admin_saves_a_protocol_with_its_stages(client, lab_admin, builtin) -> None:
    client.force_login(lab_admin)
    response = client.post(ADD_URL, admin_form({"shared_values": {"temperature": 310.0}}, TWO_STAGES))
    assert response.status_code == 302, response.content.decode()[-3000:]
    protocol = Protocol.objects.get(slug="two-steps")
    assert protocol.shared_values == {"temperature": 310.0}
    assert list(protocol.stages.values_list("name", "repeat", "values")) == [
        ("minimize", 1, {}),
        ("produce", 2, {"run_steps": 100}),
    ]
    page = client.get(f"/admin/templates_app/protocol/{protocol.pk}/change/").content.decode()
    assert "3. produce 2/2 → out_2" in page
    assert "minimize → produce x 2" in client.get("/admin/templates_app/protocol/").content.decode()


def test_the_admin_refuses_an_unusable_protocol_with_every_problem(client, lab_admin, builtin) -> None:
    client.force_login(lab_admin)
    broken = [{**TWO_STAGES[0], "continuation": "restart"}, {**TWO_STAGES[1], "values": {"run_steps": 0}}]
    response = client.post(ADD_URL, admin_form({"shared_values": {"pressure": 1}}, broken))
    assert response.status_code == 200
    page = response.content.decode()
    assert "[PROTOCOL_INVALID] Stage 2 (produce): run_steps: must be between 1" in page
    assert "[PROTOCOL_INVALID] Shared value &#x27;pressure&#x27;: no stage&#x27;s template has this variable." in page
    assert Protocol.objects.filter(slug="two-steps").exists() is False


def test_the_admin_swaps_and_deletes_stages(client, lab_admin, builtin) -> None:
    client.force_login(lab_admin)
    old = list(builtin.stages.all())
    rows = [
        {"position": 1, "name": "minimization", "slug": "vacuum-minimization", "continuation": "first"},
        {"position": 3, "name": "equilibration", "slug": "npt-equilibration", "continuation": "restart"},
        {"position": 2, "name": "production", "slug": "production-restart", "continuation": "restart", "repeat": 3},
    ]
    rows = [{**row, "id": item.pk, "protocol": builtin.pk} for row, item in zip(rows, old, strict=True)]
    rows[1]["delete"] = True
    url = f"/admin/templates_app/protocol/{builtin.pk}/change/"
    form = admin_form({"name": builtin.name, "slug": builtin.slug}, rows, initial=3)
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert list(builtin.stages.values_list("position", "name", "repeat")) == [
        (1, "minimization", 1),
        (2, "production", 3),
    ]


def test_only_staff_with_the_protocol_permissions_edit_protocols(client, member, builtin) -> None:
    client.force_login(member)
    assert client.get(ADD_URL).status_code == 302
    staff = UserFactory(username="staff_p", is_staff=True)
    client.force_login(staff)
    assert client.get(ADD_URL).status_code == 403
    change_url = f"/admin/templates_app/protocol/{builtin.pk}/change/"
    staff.user_permissions.add(Permission.objects.get(codename="view_protocol"))
    viewing = client.get(change_url).content.decode()
    assert "Minimize, equilibrate, produce" in viewing
    assert 'name="stages-0-repeat"' not in viewing
    assert client.post(change_url, {}).status_code == 403
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["add_protocol", "change_protocol"]))
    # the stages are the protocol's: its permissions edit them, with none on ProtocolStage itself
    assert 'name="stages-0-repeat"' in client.get(change_url).content.decode()
    assert client.post(ADD_URL, admin_form({}, TWO_STAGES)).status_code == 302
    assert Protocol.objects.get(slug="two-steps").stages.count() == 2


# ------------------------------------------------------------------ access and the API


def bearer(user) -> dict[str, str]:
    token = create_api_token(user=user, name=f"t-{uuid.uuid4().hex[:6]}", expires_in_days=1)
    return {"HTTP_AUTHORIZATION": f"Bearer {token.secret}"}


@pytest.mark.parametrize(
    ("who", "retired", "template_retired", "can_see"),
    [
        ("member", False, False, True),
        ("member", True, False, False),
        ("member", False, True, False),
        ("admin", True, True, True),
        ("inactive", False, False, False),
    ],
)
def test_access_protocol(who, retired, template_retired, can_see, member, lab_admin, inactive_member, builtin) -> None:
    Protocol.objects.filter(pk=builtin.pk).update(is_retired=retired)
    Template.objects.filter(slug="npt-equilibration").update(is_retired=template_retired)
    viewer = {"member": member, "admin": lab_admin, "inactive": inactive_member}[who]
    assert visible_protocols(viewer).filter(pk=builtin.pk).exists() is can_see
    if can_see:
        assert access_protocol(user=viewer, protocol_id=builtin.pk).pk == builtin.pk
    else:
        with pytest.raises(NotFound) as refused:
            access_protocol(user=viewer, protocol_id=builtin.pk)
        assert refused.value.code == "PROTOCOL_NOT_FOUND"


def test_a_protocol_nobody_can_run_is_seen_by_no_one(lab_admin, builtin) -> None:
    empty = Protocol.objects.create(name="No stages", slug="no-stages")
    unversioned = Protocol.objects.create(name="Unversioned", slug="unversioned")
    ProtocolStage.objects.create(
        protocol=unversioned, position=1, name="x", template=Template.objects.create(name="Bare", slug="bare")
    )
    assert set(visible_protocols(lab_admin).values_list("slug", flat=True)) == {builtin.slug}
    assert {empty.pk, unversioned.pk}.isdisjoint(visible_protocols(lab_admin).values_list("pk", flat=True))


def test_members_list_offered_protocols_with_stages_and_planned_steps(api_client, member, builtin) -> None:
    retired = Protocol.objects.create(name="Old", slug="old", is_retired=True)
    ProtocolStage.objects.create(
        protocol=retired, position=1, name="m", template=builtin.stages.first().template, continuation="first"
    )
    listing = api_client.get("/api/v1/protocols", **bearer(member)).json()
    assert [item["slug"] for item in listing] == [BUILTIN_PROTOCOL_SLUG]
    (item,) = listing
    production = item["stages"][2]
    template = Template.objects.get(slug="production-restart")
    assert production == {
        "position": 3,
        "name": "production",
        "template": {"id": template.pk, "slug": "production-restart", "name": template.name},
        "version": template.versions.order_by("-number").first().number,
        "repeat": 3,
        "continuation": "restart",
        "input_variable": "inputname",
        "values": {"output_name": "production"},
        "resources": {},
        "recipe_name": "",
    }
    assert [
        (step["position"], step["stage_position"], step["label"], step["output_name"]) for step in item["steps"]
    ] == [
        (1, 1, "minimization", "minimization"),
        (2, 2, "equilibration", "equilibration"),
        (3, 3, "production 1/3", "production_1"),
        (4, 3, "production 2/3", "production_2"),
        (5, 3, "production 3/3", "production_3"),
    ]
    assert item["problems"] == []
    detail = api_client.get(f"/api/v1/protocols/{builtin.pk}", **bearer(member)).json()
    assert detail == item


def test_a_retired_protocol_is_listed_to_no_one_but_an_admin_may_read_it(
    api_client, member, lab_admin, builtin
) -> None:
    Protocol.objects.filter(pk=builtin.pk).update(is_retired=True)
    assert api_client.get("/api/v1/protocols", **bearer(lab_admin)).json() == []
    assert api_client.get(f"/api/v1/protocols/{builtin.pk}", **bearer(lab_admin)).json()["is_retired"] is True
    refused = api_client.get(f"/api/v1/protocols/{builtin.pk}", **bearer(member))
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "PROTOCOL_NOT_FOUND"


def test_a_protocol_its_templates_outgrew_says_why_it_cannot_run(api_client, member, builtin) -> None:
    production = Template.objects.get(slug="production-restart")
    latest = production.versions.order_by("-number").first()
    variables = [{**v, "maximum": 50} if v["name"] == "run_steps" else v for v in latest.variables]
    variables = [{**v, "default": 50} if v["name"] == "run_steps" else v for v in variables]
    save_template_version(template=production, body=latest.body, variables=variables, user=None)
    Protocol.objects.filter(pk=builtin.pk).update(shared_values={"run_steps": 5000})
    body = api_client.get(f"/api/v1/protocols/{builtin.pk}", **bearer(member)).json()
    assert body["problems"] == [
        {"field": "stages.3", "problem": "Stage 3 (production): run_steps: must be between 1 and 50 steps"}
    ]


def test_listing_protocols_costs_the_same_queries_for_one_or_many(
    api_client, member, builtin, django_assert_max_num_queries
) -> None:
    headers = bearer(member)
    with django_assert_max_num_queries(20) as one:
        api_client.get("/api/v1/protocols", **headers)
    for number in range(5):
        protocol = save_protocol(
            protocol=Protocol(name=f"Copy {number}", slug=f"copy-{number}"),
            stages=[
                ProtocolStage(
                    **{f: getattr(s, f) for f in ("position", "name", "template", "repeat", "values", "continuation")}
                )
                for s in builtin.stages.all()
            ],
        )
        assert protocol.pk is not None
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(api_client.get("/api/v1/protocols", **headers).json()) == 6
