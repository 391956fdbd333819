"""Templates over the API (list, schema, preview) and in the admin (validation, new versions)."""

from __future__ import annotations

import json
import uuid

import pytest

from accounts.services import create_api_token
from portal.errors import NotFound
from templates_app.access import access_template, visible_templates
from templates_app.builtin import load_builtin_templates
from templates_app.models import Template, TemplateVersion
from templates_app.services import render_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def builtins() -> list[Template]:
    return load_builtin_templates()


def bearer(user) -> dict[str, str]:
    token = create_api_token(user=user, name=f"t-{uuid.uuid4().hex[:6]}", expires_in_days=1)
    return {"HTTP_AUTHORIZATION": f"Bearer {token.secret}"}


def test_members_list_offered_templates_with_a_form_schema(api_client, member, builtins) -> None:
    Template.objects.filter(slug="vacuum-minimization").update(is_retired=True)
    listing = api_client.get("/api/v1/templates", **bearer(member)).json()
    assert sorted(item["slug"] for item in listing) == ["npt-equilibration", "production-restart"]
    npt = next(item for item in listing if item["slug"] == "npt-equilibration")
    schema = npt["variables_schema"]
    assert schema["properties"]["temperature"] == {
        "type": "number",
        "x-kind": "float",
        "default": 300.0,
        "minimum": 0,
        "maximum": 1000,
        "x-unit": "K",
    }
    assert schema["properties"]["restraints"]["x-extensions"] == [".txt", ".extrabonds"]
    assert "restraints" not in schema["required"]


def test_preview_renders_and_reports_problems_without_touching_a_cluster(api_client, member, builtins) -> None:
    template = Template.objects.get(slug="vacuum-minimization")
    url = f"/api/v1/templates/{template.pk}/preview"
    ok = api_client.post(url, {"values": {"minimize_steps": 200}}, content_type="application/json", **bearer(member))
    assert ok.status_code == 200
    assert "minimize           200\n" in ok.json()["config"]
    assert ok.json()["problems"] == []
    bad = api_client.post(
        url,
        {"values": {"output_name": "x\nrun 99", "temperature": "hot"}},
        content_type="application/json",
        **bearer(member),
    )
    assert bad.json()["config"] is None
    assert sorted(p["code"] for p in bad.json()["problems"]) == ["VALUE_UNSAFE", "VALUE_WRONG_TYPE"]


@pytest.mark.parametrize(
    ("who", "retired", "can_see"),
    [("member", False, True), ("member", True, False), ("admin", True, True), ("inactive", False, False)],
)
def test_access_template(who, retired, can_see, member, lab_admin, inactive_member, builtins) -> None:
    template = Template.objects.get(slug="npt-equilibration")
    Template.objects.filter(pk=template.pk).update(is_retired=retired)
    viewer = {"member": member, "admin": lab_admin, "inactive": inactive_member}[who]
    assert visible_templates(viewer).filter(pk=template.pk).exists() is can_see
    if can_see:
        assert access_template(user=viewer, template_id=template.pk).pk == template.pk
    else:
        with pytest.raises(NotFound):
            access_template(user=viewer, template_id=template.pk)


def admin_post(client, template: Template, *, body: str, variables) -> object:
    return client.post(
        f"/admin/templates_app/template/{template.pk}/change/",
        {
            "name": template.name,
            "slug": template.slug,
            "description": template.description,
            "category": template.category,
            "body": body,
            "variables": json.dumps(variables),
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )


def test_the_admin_refuses_a_broken_template_with_the_line_and_keeps_the_version(client, lab_admin, builtins) -> None:
    client.force_login(lab_admin)
    template = Template.objects.get(slug="vacuum-minimization")
    version = template.versions.get()
    response = admin_post(client, template, body=version.body + "fooBar 3\n", variables=version.variables)
    assert response.status_code == 200
    assert "NAMD_UNKNOWN_KEYWORD" in response.content.decode()
    # the line of the config rendered with the defaults, which leaves out the optional seed's line
    assert f"line {render_version(version=version, values={}).config.count(chr(10)) + 1}:" in response.content.decode()
    undeclared = admin_post(client, template, body=version.body + "run {{ steps }}\n", variables=version.variables)
    assert "VARIABLE_UNDECLARED" in undeclared.content.decode()
    assert template.versions.count() == 1


def test_an_admin_edit_that_validates_makes_a_new_version(client, lab_admin, builtins) -> None:
    client.force_login(lab_admin)
    template = Template.objects.get(slug="vacuum-minimization")
    version = template.versions.get()
    response = admin_post(
        client, template, body=version.body.replace("1.0\n", "1.0 # edited\n", 1), variables=version.variables
    )
    assert response.status_code == 302
    assert list(TemplateVersion.objects.filter(template=template).values_list("number", flat=True)) == [2, 1]


def local_profile_with_recipe():
    from tests.factories import ClusterProfileFactory

    profile = ClusterProfileFactory(slug="hpc", allowed_accounts=["lab"], su_per_core_hour="1.5")
    profile.partitions.create(name="debug", is_default=True, max_walltime_s=3600, max_nodes=1, cores_per_node=4)
    profile.launch_recipes.create(name="cpu", kind="cpu", command="srun namd2 +p{cores} {config}", module_lines="")
    return profile


def test_preview_of_a_whole_job_gives_config_script_and_cost(api_client, member, builtins) -> None:
    profile = local_profile_with_recipe()
    template = Template.objects.get(slug="vacuum-minimization")
    job = {
        "cluster_id": profile.pk,
        "recipe": "cpu",
        "title": "my run; $(id)",
        "resources": {"partition": "debug", "ntasks_per_node": 2, "walltime_s": 1800, "account": "lab"},
    }
    response = api_client.post(
        f"/api/v1/templates/{template.pk}/preview",
        {"values": {}, "job": job},
        content_type="application/json",
        **bearer(member),
    )
    body = response.json()
    assert body["problems"] == []
    script = body["batch_script"].splitlines()
    assert "#SBATCH --job-name=np-000000000000-my-run-id" in script
    assert "#SBATCH --time=0-00:30:00" in script
    assert script[-1] == "srun namd2 +p2 job.namd"
    assert "$(id)" not in body["batch_script"]
    assert body["cost"] == {"core_hours": "1.0000", "gpu_hours": "0.0000", "service_units": "1.5000"}


def test_preview_reports_resources_over_the_partitions_limits(api_client, member, builtins) -> None:
    profile = local_profile_with_recipe()
    template = Template.objects.get(slug="vacuum-minimization")
    job = {
        "cluster_id": profile.pk,
        "recipe": "cpu",
        "resources": {"partition": "debug", "ntasks_per_node": 8, "walltime_s": 7200},
    }
    body = api_client.post(
        f"/api/v1/templates/{template.pk}/preview", {"job": job}, content_type="application/json", **bearer(member)
    ).json()
    assert body["config"] is not None
    assert body["batch_script"] is None
    assert sorted(p["code"] for p in body["problems"]) == ["CORES_OVER_LIMIT", "TIME_OVER_LIMIT"]


def test_the_admin_live_preview_renders_defaults_or_names_the_problems(client, lab_admin, builtins) -> None:
    client.force_login(lab_admin)
    version = Template.objects.get(slug="vacuum-minimization").versions.get()
    variables = json.dumps(version.variables)
    page = client.get(f"/admin/templates_app/template/{version.template_id}/change/").content.decode()
    assert "/admin/templates_app/template/preview/" in page
    assert "vendor/htmx/htmx.min.js" in page
    ok = client.post("/admin/templates_app/template/preview/", {"body": version.body, "variables": variables})
    assert "minimize           1000" in ok.content.decode()
    bad = client.post(
        "/admin/templates_app/template/preview/", {"body": "PME on\n" + version.body, "variables": variables}
    )
    assert "NAMD_PME_NEEDS_CELL" in bad.content.decode()
    not_json = client.post("/admin/templates_app/template/preview/", {"body": version.body, "variables": "[{"})
    assert "variables: not JSON" in not_json.content.decode()


def test_members_cannot_use_the_admin_preview(client, member) -> None:
    client.force_login(member)
    assert client.post("/admin/templates_app/template/preview/", {"body": "x"}).status_code == 302
