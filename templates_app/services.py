"""Writes on templates: new immutable versions (validated whole), retiring, previews."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from accounts.models import User
from clusters.models import ClusterProfile, LaunchRecipe
from clusters.paths import expand_root
from portal.errors import TemplateError
from templates_app import batch_script
from templates_app.assets import StoredAsset
from templates_app.models import Template, TemplateAsset, TemplateVersion
from templates_app.rendering import Problem, Rendered, TemplateProblems, check_template, render_config
from templates_app.specs import specs_from_json

CONFIG_NAME = "job.namd"
WORKDIR_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}")


def problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "code": problem.code,
        "message": problem.message,
        "field": problem.field,
        "line": problem.line,
        "severity": problem.severity,
        "file": problem.file,
    }


def _error(problems: list[Problem]) -> TemplateError:
    first = problems[0]
    return TemplateError(
        str(first.message if first.line is None else f"line {first.line}: {first.message}"),
        code=first.code,
        details={"problems": [problem_dict(p) for p in problems]},
    )


def config_path(workdir: str) -> str:
    """Where a version's config sits in the job folder: `job.namd` in its workdir."""
    return f"{workdir.strip('/')}/{CONFIG_NAME}" if workdir.strip("/") else CONFIG_NAME


def template_problems(
    *, body: str, variables: Any, workdir: str = "", assets: dict[str, Path] | None = None
) -> list[Problem]:
    """Everything wrong with a body and its variable definitions (empty when usable)."""
    try:
        specs = specs_from_json(variables)
    except TemplateProblems as exc:
        return exc.problems
    if workdir and not WORKDIR_RE.fullmatch(workdir):
        return [Problem("TEMPLATE_WORKDIR_INVALID", "the stage's folder is one folder name of letters, digits, _.+-")]
    return check_template(body, specs, config_path=config_path(workdir), files=assets)


@transaction.atomic
def save_template_version(
    *,
    template: Template,
    body: str,
    variables: Any,
    user: User | None,
    workdir: str | None = None,
    assets: list[StoredAsset] | None = None,
) -> TemplateVersion:
    """A new version when body, variables, workdir or assets changed (the latest otherwise). Raises TemplateError.

    `workdir` and `assets` left as None keep the latest version's.
    """
    latest = Template.objects.select_for_update().get(pk=template.pk).versions.order_by("-number").first()
    if workdir is None:
        workdir = latest.workdir if latest else ""
    if assets is None:
        assets = [_stored(asset) for asset in latest.assets.all()] if latest else []
    problems = template_problems(
        body=body, variables=variables, workdir=workdir, assets={a.relpath: Path(a.stored_path) for a in assets}
    )
    if problems:
        raise _error(problems)
    unchanged = latest is not None and (latest.body, latest.variables, latest.workdir) == (body, variables, workdir)
    if unchanged and sorted((a.relpath, a.sha256) for a in latest.assets.all()) == sorted(
        (a.relpath, a.sha256) for a in assets
    ):
        return latest
    version = TemplateVersion.objects.create(
        template=template,
        number=(latest.number if latest else 0) + 1,
        body=body,
        variables=variables,
        workdir=workdir,
        created_by=user,
    )
    TemplateAsset.objects.bulk_create(
        TemplateAsset(
            version=version, relpath=a.relpath, size_bytes=a.size_bytes, sha256=a.sha256, stored_path=a.stored_path
        )
        for a in assets
    )
    return version


def _stored(asset: TemplateAsset) -> StoredAsset:
    return StoredAsset(asset.relpath, asset.sha256, asset.size_bytes, asset.stored_path)


def version_files(version: TemplateVersion) -> dict[str, Path]:
    """The files a version ships, by their path in the job folder (what its config may source on the portal)."""
    return {asset.relpath: Path(asset.stored_path) for asset in version.assets.all()}


def render_version(*, version: TemplateVersion, values: dict[str, Any]) -> Rendered:
    """The NAMD config of a version for these values. Raises TemplateError with every problem."""
    try:
        return render_config(
            version.body,
            specs_from_json(version.variables),
            values,
            config_path=config_path(version.workdir),
            files=version_files(version) or None,
        )
    except TemplateProblems as exc:
        raise _error(exc.problems) from exc


# ------------------------------------------------------------------ previews of a whole job (no cluster contact)

PREVIEW_JOB_UUID = uuid.UUID(int=0)  # a preview has no job yet; the real uuid tags the real script


def cluster_settings(profile: ClusterProfile) -> batch_script.ClusterSettings:
    """The batch-script generator's view of a profile and its partitions."""
    return batch_script.ClusterSettings(
        profile_module_lines=tuple(line for line in profile.module_lines.splitlines() if line.strip()),
        allowed_accounts=tuple(profile.allowed_accounts),
        allowed_qos=tuple(profile.allowed_qos),
        su_per_core_hour=profile.su_per_core_hour,
        su_per_gpu_hour=profile.su_per_gpu_hour,
        partitions=tuple(
            batch_script.PartitionLimits(
                name=p.name,
                max_walltime_s=p.max_walltime_s,
                max_nodes=p.max_nodes,
                cores_per_node=p.cores_per_node,
                memory_per_node_mb=p.memory_per_node_mb,
                gpus_per_node=p.gpus_per_node,
            )
            for p in profile.partitions.all()
        ),
    )


def launch_spec(recipe: LaunchRecipe) -> batch_script.LaunchSpec:
    return batch_script.LaunchSpec(
        kind=recipe.kind,
        command=recipe.command,
        module_lines=tuple(line for line in recipe.module_lines.splitlines() if line.strip()),
        container_image=recipe.container_image,
    )


@dataclass(frozen=True)
class JobPreview:
    config: str | None
    batch_script: str | None
    cost: batch_script.CostEstimate | None
    problems: list[dict[str, Any]]
    warnings: list[dict[str, Any]] = field(default_factory=list)
    cluster_commands: list[dict[str, Any]] = field(default_factory=list)
    files_read: list[dict[str, Any]] = field(default_factory=list)


def preview_job(
    *,
    version: TemplateVersion,
    values: dict[str, Any],
    profile: ClusterProfile,
    recipe: LaunchRecipe,
    resources: batch_script.Resources,
    title: str,
    remote_username: str,
    config_filename: str = "",
    folder_slug: str = "",
) -> JobPreview:
    """Config, batch script and cost for a job that is not submitted; every problem of each part.

    `config_filename` (default: the version's `job.namd`) and `folder_slug` (default: the template's slug) place
    it as a pipeline step is placed: its own config name in the run's folder."""
    problems: list[dict[str, Any]] = []
    config, rendered = None, None
    try:
        rendered = render_version(version=version, values=values)
        config = rendered.config
    except TemplateError as exc:
        problems += exc.details["problems"]
    settings = cluster_settings(profile)
    script = cost = None
    try:
        scratch_root = expand_root(profile.scratch_root_pattern, remote_username)
        inputs = batch_script.ScriptInputs(
            job_uuid=PREVIEW_JOB_UUID,
            job_title=title,
            config_filename=config_filename or config_path(version.workdir),
            scratch_dir=f"{scratch_root}/{folder_slug or version.template.slug}-{PREVIEW_JOB_UUID.hex[:8]}",
        )
        script = batch_script.render_batch_script(settings, launch_spec(recipe), resources, inputs)
        cost = batch_script.estimate_cost(settings, resources)
    except batch_script.BatchScriptError as exc:
        problems += [{"code": p.code, "message": p.message, "field": "resources", "line": None} for p in exc.problems]
    except ValueError as exc:
        problems.append({"code": "BATCH_SCRIPT_INVALID", "message": str(exc), "field": "", "line": None})
    reading = (
        {}
        if rendered is None
        else {
            "warnings": [problem_dict(p) for p in rendered.warnings],
            "cluster_commands": rendered.cluster_commands,
            "files_read": rendered.files_read,
        }
    )
    return JobPreview(config=config, batch_script=script, cost=cost, problems=problems, **reading)
