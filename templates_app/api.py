"""API endpoints: the templates a member may use, each with its variable schema, and previews."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from clusters import access as cluster_access
from clusters import selectors as cluster_selectors
from portal.errors import TemplateError
from templates_app import access, selectors, services
from templates_app.batch_script import Resources
from templates_app.models import Template
from templates_app.schemas import PreviewIn, PreviewOut, TemplateOut
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
        resources=Resources(
            partition=job.resources.partition,
            nodes=job.resources.nodes,
            ntasks=job.resources.ntasks_per_node,
            cpus_per_task=job.resources.cpus_per_task,
            memory_mb=job.resources.memory_mb,
            walltime_s=job.resources.walltime_s,
            gpus=job.resources.gpus,
            account=job.resources.account,
            qos=job.resources.qos,
        ),
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
    )
