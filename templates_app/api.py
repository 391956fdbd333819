"""API endpoints: the templates a member may use, each with its variable schema, and previews; the protocols
a member may run, each with its stages and planned steps."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from accounting.budgets import estimate_outlook
from clusters import access as cluster_access
from clusters import selectors as cluster_selectors
from portal.errors import TemplateError
from templates_app import access, protocol_services, selectors, services
from templates_app.models import Protocol, Template
from templates_app.protocols import plan_steps
from templates_app.schemas import (
    PlannedStepOut,
    PreviewIn,
    PreviewOut,
    ProtocolOut,
    ProtocolStageOut,
    StageTemplateOut,
    TemplateOut,
)
from templates_app.specs import json_schema, specs_from_json

router = Router(tags=["templates"])


def _out(template: Template) -> TemplateOut:
    version = selectors.latest_version(template)
    return TemplateOut(
        id=template.pk,
        name=template.name,
        slug=template.slug,
        description=template.description,
        category=template.category,
        is_retired=template.is_retired,
        family=template.family,
        stage=template.stage,
        workdir=version.workdir,
        assets=[asset.relpath for asset in version.assets.all()],
        version=version.number,
        variables_schema=json_schema(specs_from_json(version.variables)),
    )


@router.get("/templates", response=list[TemplateOut])
def list_templates(request: HttpRequest) -> list[TemplateOut]:
    return [_out(template) for template in selectors.templates_with_versions(request.auth)]


@router.get("/templates/{int:template_id}", response=TemplateOut)
def get_template(request: HttpRequest, template_id: int) -> TemplateOut:
    return _out(access.access_template(user=request.auth, template_id=template_id))


@router.post("/templates/{int:template_id}/preview", response=PreviewOut)
def preview_template(request: HttpRequest, template_id: int, payload: PreviewIn) -> PreviewOut:
    """Render with these values (defaults fill the rest) and check; never touches a cluster."""
    version = selectors.latest_version(access.access_template(user=request.auth, template_id=template_id))
    if payload.job is None:
        try:
            rendered = services.render_version(version=version, values=payload.values)
        except TemplateError as exc:
            return PreviewOut(
                template_id=template_id, version=version.number, config=None, problems=exc.details["problems"]
            )
        return PreviewOut(
            template_id=template_id,
            version=version.number,
            config=rendered.config,
            problems=[],
            warnings=[services.problem_dict(p) for p in rendered.warnings],
            cluster_commands=rendered.cluster_commands,
            files_read=rendered.files_read,
        )
    job = payload.job
    profile = cluster_access.access_profile(user=request.auth, profile_id=job.cluster_id)
    preview = services.preview_job(
        version=version,
        values=payload.values,
        profile=profile,
        recipe=cluster_access.access_launch_recipe(profile=profile, name=job.recipe),
        resources=job.resources.as_resources(),
        title=job.title,
        remote_username=cluster_selectors.remote_username(user=request.auth, profile=profile),
    )
    return PreviewOut(
        template_id=template_id,
        version=version.number,
        config=preview.config,
        batch_script=preview.batch_script,
        cost=preview.cost,
        problems=preview.problems,
        warnings=preview.warnings,
        cluster_commands=preview.cluster_commands,
        files_read=preview.files_read,
        budget=estimate_outlook(
            member_id=request.auth.pk,
            account=job.resources.account,
            estimate_su=preview.cost.service_units if preview.cost else None,
        ),
    )


def _protocol_out(protocol: Protocol) -> ProtocolOut:
    pinned = protocol_services.pinned_stages(protocol)
    stages = [item.stage for item in pinned]
    return ProtocolOut(
        id=protocol.pk,
        name=protocol.name,
        slug=protocol.slug,
        description=protocol.description,
        family=protocol.family,
        is_retired=protocol.is_retired,
        shared_values=protocol.shared_values,
        stages=[
            ProtocolStageOut(
                position=item.stage.position,
                name=item.stage.name,
                template=StageTemplateOut(
                    id=item.stage.template.pk, slug=item.stage.template.slug, name=item.stage.template.name
                ),
                version=item.version.number,
                repeat=item.stage.repeat,
                continuation=item.stage.continuation,
                input_variable=item.stage.input_variable,
                values=item.stage.values,
                resources=item.stage.resources,
                recipe_name=item.stage.recipe_name,
            )
            for item in pinned
        ],
        steps=[
            PlannedStepOut(
                position=step.position,
                stage_position=step.stage_position,
                label=step.label,
                output_name=step.output_name,
            )
            for step in plan_steps([item.rule for item in pinned])
        ],
        problems=protocol_services.protocol_draft_problems(shared_values=protocol.shared_values, stages=stages),
    )


@router.get("/protocols", response=list[ProtocolOut])
def list_protocols(request: HttpRequest) -> list[ProtocolOut]:
    """The protocols the caller may run, each with its stages and the steps a run of it makes."""
    return [_protocol_out(protocol) for protocol in selectors.offered_protocols(request.auth)]


@router.get("/protocols/{int:protocol_id}", response=ProtocolOut)
def get_protocol(request: HttpRequest, protocol_id: int) -> ProtocolOut:
    return _protocol_out(access.access_protocol(user=request.auth, protocol_id=protocol_id))
