"""API endpoints: the templates a member may use, each with its variable schema, and previews."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from portal.errors import TemplateError
from templates_app import access, selectors, services
from templates_app.models import Template
from templates_app.schemas import PreviewIn, PreviewOut, TemplateOut
from templates_app.specs import json_schema, specs_from_json

router = Router(tags=["templates"])


def _out(template: Template) -> TemplateOut:
    version = selectors.latest_version(template)
    return TemplateOut(
        id=template.pk, name=template.name, slug=template.slug, description=template.description,
        category=template.category, is_retired=template.is_retired, version=version.number,
        variables_schema=json_schema(specs_from_json(version.variables)),
    )  # fmt: skip


@router.get("/templates", response=list[TemplateOut])
def list_templates(request: HttpRequest) -> list[TemplateOut]:
    return [_out(template) for template in selectors.templates_with_versions(request.auth)]


@router.get("/templates/{template_id}", response=TemplateOut)
def get_template(request: HttpRequest, template_id: int) -> TemplateOut:
    return _out(access.access_template(user=request.auth, template_id=template_id))


@router.post("/templates/{template_id}/preview", response=PreviewOut)
def preview_template(request: HttpRequest, template_id: int, payload: PreviewIn) -> PreviewOut:
    """Render with these values (defaults fill the rest) and check; never touches a cluster."""
    version = selectors.latest_version(access.access_template(user=request.auth, template_id=template_id))
    try:
        config, problems = services.render_version(version=version, values=payload.values).config, []
    except TemplateError as exc:
        config, problems = None, exc.details["problems"]
    return PreviewOut(template_id=template_id, version=version.number, config=config, problems=problems)
