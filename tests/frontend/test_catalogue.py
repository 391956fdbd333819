"""The templates catalogue: offered templates by category, each with its variables and the config it renders
with its defaults; retired ones are gone for everyone."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from templates_app.builtin import BUILTIN_TEMPLATES, load_builtin_templates
from templates_app.models import Template
from templates_app.selectors import latest_version
from templates_app.services import render_version, save_template_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def builtins(db) -> list[Template]:
    return load_builtin_templates()


def test_the_catalogue_lists_the_builtin_templates_by_category(member_client, builtins) -> None:
    response = member_client.get(reverse("frontend:catalogue"))
    assert response.status_code == 200
    text = response.content.decode()
    headings = re.findall(r'<h2 id="category-\d+">([^<]+)</h2>', text)
    assert headings == ["Minimization", "Equilibration", "Production"]  # workflow order, empty "Other" left out
    for builtin in BUILTIN_TEMPLATES:
        count = len(builtin.variables)
        detail_link = f'<a href="/templates/{builtin.slug}/">{html.escape(builtin.name)}</a>'
        assert detail_link in text
        card = text[text.index(detail_link) :]
        assert f"Version 1 · {count} variables" in card[: card.index("</article>")]
        assert f'href="/jobs/new/{builtin.slug}/"' in card[: card.index("</article>")]


def test_a_retired_template_is_not_listed_and_its_page_is_gone_for_members_and_admins(
    member_client, lab_admin, builtins
) -> None:
    Template.objects.filter(slug="vacuum-minimization").update(is_retired=True)
    assert b"Minimization in vacuum" not in member_client.get(reverse("frontend:catalogue")).content
    detail = reverse("frontend:catalogue_detail", args=["vacuum-minimization"])
    assert member_client.get(detail).status_code == 404
    admin = Client()
    admin.force_login(lab_admin)
    assert admin.get(detail).status_code == 404
    assert b"Minimization in vacuum" not in admin.get(reverse("frontend:catalogue")).content


def test_the_detail_shows_every_variable_and_the_config_rendered_with_the_defaults(member_client, builtins) -> None:
    template = Template.objects.get(slug="production-restart")
    response = member_client.get(reverse("frontend:catalogue_detail", args=[template.slug]))
    assert response.status_code == 200
    text = response.content.decode()
    builtin = next(b for b in BUILTIN_TEMPLATES if b.slug == template.slug)
    rows = re.findall(r'<tr id="variable-([a-z_]+)">', text)
    assert rows == [variable["name"] for variable in builtin.variables]
    ensemble = text[text.index('<tr id="variable-ensemble">') :].split("</tr>")[0]
    assert "<td>choice</td>" in ensemble
    assert "one of <code>NVT</code>, <code>NPT</code>" in ensemble
    temperature = text[text.index('<tr id="variable-temperature">') :].split("</tr>")[0]
    assert "<code>300.0</code>" in temperature
    assert "0 to 1000" in temperature
    assert "<td>K</td>" in temperature
    expected = render_version(version=latest_version(template), values={}).config
    assert f'<pre id="example-config">{html.escape(expected)}</pre>' in text
    assert "bincoordinates" in expected
    assert f'href="{reverse("frontend:wizard_form", args=[template.slug])}"' in text


def test_the_detail_shows_the_latest_version(member_client, builtins) -> None:
    template = Template.objects.get(slug="vacuum-minimization")
    builtin = next(b for b in BUILTIN_TEMPLATES if b.slug == template.slug)
    changed = builtin.body.replace("minimize", "# a comment line\nminimize", 1)
    save_template_version(template=template, body=changed, variables=builtin.variables, user=None)
    response = member_client.get(reverse("frontend:catalogue_detail", args=[template.slug]))
    assert b"<dt>Version</dt><dd>2," in response.content
    assert b"# a comment line" in response.content


def test_an_unknown_template_is_not_found_and_pages_need_a_login(client, member_client, builtins) -> None:
    assert member_client.get(reverse("frontend:catalogue_detail", args=["no-such-template"])).status_code == 404
    for url in (reverse("frontend:catalogue"), reverse("frontend:catalogue_detail", args=["vacuum-minimization"])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_the_catalogue_is_read_only(member_client, builtins) -> None:
    url = reverse("frontend:catalogue_detail", args=["vacuum-minimization"])
    assert member_client.post(url).status_code == 405
    assert member_client.post(reverse("frontend:catalogue")).status_code == 405
