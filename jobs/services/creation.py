"""New jobs: created from a template, from another job (clone), or continuing one (restart, next stage).

Every new job row is made by `add_job` with its CREATED event, below the member's roots, its config
and batch script rendered by `render_job`. Touches no cluster.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

from django.db import transaction

from accounts.models import User
from clusters import access as cluster_access
from clusters import selectors as cluster_selectors
from clusters.models import ClusterProfile, LaunchRecipe
from clusters.paths import expand_root
from jobs import input_facts, layout
from jobs.access import access_job, access_job_to_act
from jobs.models import EDITABLE_STATES, InputFile, Job, JobEvent, JobState
from jobs.services.inputs import StagedInput, input_roles, register_staged_inputs
from jobs.services.readiness import refresh_readiness
from jobs.transitions import note
from portal.errors import Conflict, InvalidInput
from templates_app import access as template_access
from templates_app import batch_script
from templates_app import selectors as template_selectors
from templates_app.models import TemplateVersion
from templates_app.services import cluster_settings, config_path, launch_spec, render_version
from templates_app.specs import specs_from_json


@dataclasses.dataclass(frozen=True)
class JobRequest:
    template_id: int
    cluster_id: int
    recipe: str
    title: str
    values: dict[str, Any]
    resources: batch_script.Resources
    continue_on_timeout: bool = False


@dataclasses.dataclass(frozen=True)
class NewJob:
    """Where a job about to be created lives: its uuid and its two folders below the owner's roots."""

    uuid: uuid.UUID
    project_dir: str
    scratch_dir: str


def place_job(*, owner: User, profile: ClusterProfile, slug: str) -> NewJob:
    """A fresh uuid and the owner's two folders for it on the profile's cluster. Raises InvalidInput
    (REMOTE_USERNAME_INVALID: no credential, and the portal username is no cluster username)."""
    (new,) = place_jobs(owner=owner, profile=profile, slug=slug, count=1)
    return new


def place_jobs(*, owner: User, profile: ClusterProfile, slug: str, count: int) -> list[NewJob]:
    """`place_job` for `count` jobs at once (a sweep's points): the owner's roots are looked up once."""
    username = cluster_selectors.remote_username(user=owner, profile=profile)
    try:
        project_root = expand_root(profile.project_root_pattern, username)
        scratch_root = expand_root(profile.scratch_root_pattern, username)
    except ValueError as exc:
        message = "Save your credential for this cluster (with your cluster username) on the Clusters page first."
        raise InvalidInput(message, code="REMOTE_USERNAME_INVALID") from exc
    placed = []
    for _ in range(count):
        job_uuid = uuid.uuid4()
        project_dir, scratch_dir = layout.job_dirs(
            project_root=project_root, scratch_root=scratch_root, slug=slug, job_uuid=job_uuid
        )
        placed.append(NewJob(job_uuid, project_dir, scratch_dir))
    return placed


def render_job(
    *,
    job_uuid: uuid.UUID,
    version: TemplateVersion,
    values: dict[str, Any],
    profile: ClusterProfile,
    recipe: LaunchRecipe,
    resources: batch_script.Resources,
    title: str,
    scratch_dir: str,
    config_filename: str = "",
) -> tuple[str, str, dict[str, Any]]:
    """(config, batch script, values with defaults); the config is run from `config_filename` (default: the
    version's `job.namd`). Raises TemplateError, InvalidInput (the resource codes)."""
    rendered = render_version(version=version, values=values)
    try:
        script = batch_script.render_batch_script(
            cluster_settings(profile),
            launch_spec(recipe),
            resources,
            batch_script.ScriptInputs(
                job_uuid=job_uuid,
                job_title=title,
                scratch_dir=scratch_dir,
                config_filename=config_filename or config_path(version.workdir),
            ),
        )
    except batch_script.BatchScriptError as exc:
        raise InvalidInput(
            exc.problems[0].message,
            code=exc.problems[0].code,
            details={"problems": [{"code": p.code, "message": p.message, "field": "resources"} for p in exc.problems]},
        ) from exc
    return rendered.config, script, rendered.values


def add_job(*, new: NewJob, version: TemplateVersion, actor: User, source: str, detail: str = "", **fields: Any) -> Job:
    """The DRAFT job row and its CREATED event (in the caller's transaction)."""
    fields.setdefault("config_path", config_path(version.workdir))
    job = Job.objects.create(
        uuid=new.uuid, template_version=version, project_dir=new.project_dir, scratch_dir=new.scratch_dir, **fields
    )
    JobEvent.objects.create(
        job=job, kind="CREATED", new_state=JobState.DRAFT, source=source, actor=actor, detail=detail[:1000]
    )
    return job


def create_job(*, user: User, request: JobRequest) -> Job:
    """A DRAFT job with its rendered config and batch script. Raises NotFound, TemplateError, InvalidInput."""
    template = template_access.access_template(user=user, template_id=request.template_id)
    if template.is_retired:
        raise Conflict("This template is retired; choose another.", code="TEMPLATE_RETIRED")
    version = template_selectors.latest_version(template)
    profile = cluster_access.access_profile(user=user, profile_id=request.cluster_id)
    recipe = cluster_access.access_launch_recipe(profile=profile, name=request.recipe)
    new = place_job(owner=user, profile=profile, slug=template.slug)
    title = request.title.strip() or template.name
    config, script, values = render_job(
        job_uuid=new.uuid,
        version=version,
        values=request.values,
        profile=profile,
        recipe=recipe,
        resources=request.resources,
        title=title,
        scratch_dir=new.scratch_dir,
    )
    assets = [
        StagedInput(a.relpath, Path(a.stored_path), a.size_bytes, a.sha256, is_template_asset=True)
        for a in version.assets.all()
    ]
    with transaction.atomic():
        job = add_job(
            new=new,
            version=version,
            actor=user,
            source="user",
            owner=user,
            profile=profile,
            title=title,
            values=values,
            resources=dataclasses.asdict(request.resources),
            recipe_name=recipe.name,
            config_text=config,
            batch_script=script,
            continue_on_timeout=request.continue_on_timeout,
        )
        if assets:
            register_staged_inputs(user=user, job=job, staged=assets)
    return job


def update_job_values(*, user: User, job_id: int, values: dict[str, Any]) -> Job:
    """New values for a job not yet submitted: its config and batch script rendered again, its inputs' roles
    read from the new config. Raises NotFound, Conflict (JOB_NOT_EDITABLE), TemplateError."""
    with transaction.atomic():
        job = access_job_to_act(user=user, job_id=job_id, for_update=True)
        if job.state not in EDITABLE_STATES:
            raise Conflict("Values can change only before the job is submitted.", code="JOB_NOT_EDITABLE")
        recipe = cluster_access.access_launch_recipe(profile=job.profile, name=job.recipe_name)
        config, script, rendered = render_job(
            job_uuid=job.uuid,
            version=job.template_version,
            values={**job.values, **values},
            profile=job.profile,
            recipe=recipe,
            resources=batch_script.Resources(**job.resources),
            title=job.title,
            scratch_dir=job.scratch_dir,
            config_filename=job.config_path,
        )
        Job.objects.filter(pk=job.pk).update(config_text=config, batch_script=script, values=rendered)
        roles = input_roles(config, job.config_path)
        for input_file in job.inputs.all():
            if input_file.role != roles.get(input_file.name, ""):
                InputFile.objects.filter(pk=input_file.pk).update(role=roles.get(input_file.name, ""))
        note(job, "VALUES_CHANGED", source="user", actor_id=user.pk, detail=", ".join(sorted(values))[:1000])
    job.refresh_from_db()
    refresh_readiness(job, source="user")
    return job


def suggested_values(job: Job) -> dict[str, Any]:
    """Values the job's inputs already say (cell, first step) that differ from the job's own."""
    names = {spec.name for spec in specs_from_json(job.template_version.variables)}
    found = input_facts.suggested_values(names, [(f.name, f.role, f.facts) for f in job.inputs.all()])
    return {name: value for name, value in found.items() if job.values.get(name) != value}


def clone_job(*, user: User, job_id: int) -> Job:
    """A new DRAFT with the job's template, values, resources, recipe and cluster, titled "<title> (copy)".

    Rendered with the template's latest version, like any new job. Raises NotFound, Conflict (TEMPLATE_RETIRED),
    TemplateError, InvalidInput (when the template or the cluster changed since).
    """
    source = access_job(user=user, job_id=job_id)
    request = JobRequest(
        template_id=source.template_version.template_id,
        cluster_id=source.profile_id,
        recipe=source.recipe_name,
        title=f"{source.title[:193]} (copy)",
        values=source.values,
        resources=batch_script.Resources(**source.resources),
        continue_on_timeout=source.continue_on_timeout,
    )
    return create_job(user=user, request=request)
