"""API endpoints for pipeline runs. Each parses input, makes one access/selector/service call and returns."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from jobs import services
from jobs.access import access_pipeline, visible_pipelines
from jobs.api import MAX_PAGE, MAX_PAGE_SIZE, job_out
from jobs.models import Job, Pipeline
from jobs.pipeline_schemas import (
    PipelineAcceptedOut,
    PipelineCreateIn,
    PipelineDetailOut,
    PipelineEnergiesOut,
    PipelinePage,
    PipelinePreviewOut,
    PipelineResumeIn,
)
from jobs.pipeline_selectors import visible_pipeline_rows
from jobs.pipeline_steps import current_steps, pipeline_energies, pipeline_status, upload_step
from portal.schemas import error_responses
from templates_app.batch_script import Resources
from templates_app.schemas import ResourcesIn

router = Router(tags=["pipelines"])
MAX_ENERGY_COLUMNS = 20


def _resources(resources: ResourcesIn) -> Resources:
    return Resources(
        partition=resources.partition,
        nodes=resources.nodes,
        ntasks=resources.ntasks_per_node,
        cpus_per_task=resources.cpus_per_task,
        memory_mb=resources.memory_mb,
        walltime_s=resources.walltime_s,
        gpus=resources.gpus,
        account=resources.account,
        qos=resources.qos,
    )


def _request(payload: PipelineCreateIn) -> services.PipelineRequest:
    return services.PipelineRequest(
        protocol_id=payload.protocol_id,
        cluster_id=payload.cluster_id,
        recipe=payload.recipe,
        title=payload.title,
        values=payload.values,
        stage_values=payload.stage_values,
        resources=_resources(payload.resources),
        continue_on_timeout=payload.continue_on_timeout,
    )


def _step_preview(step: services.StepPreview) -> dict[str, Any]:
    preview = step.preview
    return {
        "position": step.step.plan.position,
        "stage_position": step.step.plan.stage_position,
        "label": step.step.plan.label,
        "template": step.step.version.template.slug,
        "version": step.step.version.number,
        "output_name": step.step.plan.output_name,
        "config_path": step.step.config_path,
        "script_path": step.step.script_path,
        "config": preview.config if preview else None,
        "batch_script": preview.batch_script if preview else None,
        "cost": preview.cost if preview else None,
        "problems": step.problems,
        "warnings": preview.warnings if preview else [],
    }


def _out(pipeline: Pipeline, jobs: list[Job] | None = None) -> dict[str, Any]:
    """`jobs`: the run's jobs when already loaded (a list page loads them for every run in one query)."""
    steps = current_steps(pipeline, jobs)
    status = pipeline_status(steps, cancel_requested=pipeline.cancel_requested_at is not None)
    return {
        "id": pipeline.pk,
        "uuid": str(pipeline.uuid),
        "title": pipeline.title,
        "owner": pipeline.owner.username,
        "protocol_id": pipeline.protocol_id,
        "protocol": pipeline.protocol.slug,
        "cluster_id": pipeline.profile_id,
        "state": status.state,
        "current_position": status.current.position if status.current else None,
        "steps_done": status.done,
        "steps_total": status.total,
        "created_at": pipeline.created_at,
    }


def _detail(pipeline: Pipeline) -> dict[str, Any]:
    jobs = list(pipeline.steps.select_related("owner", "profile", "template_version__template"))
    waiting = upload_step(current_steps(pipeline, jobs))
    return {
        **_out(pipeline, jobs),
        "values": pipeline.values,
        "stage_values": pipeline.stage_values,
        "resources": pipeline.resources,
        "recipe": pipeline.recipe_name,
        "continue_on_timeout": pipeline.continue_on_timeout,
        "project_dir": pipeline.project_dir,
        "scratch_dir": pipeline.scratch_dir,
        "upload_job_id": waiting.pk if waiting else None,
        "input_problems": services.input_problems(waiting) if waiting else [],
        "steps": [job_out(job) for job in current_steps(pipeline, jobs)],
        "history": [job_out(job) for job in sorted(jobs, key=lambda job: job.pk)],
    }


def _accepted(pipeline_id: int, task_id: str, user: Any) -> Status:
    return Status(202, {"pipeline": _out(access_pipeline(user=user, pipeline_id=pipeline_id)), "task_id": task_id})


@router.post("/pipelines", response={201: PipelineDetailOut, **error_responses(404, 409)})
def create_pipeline(request: HttpRequest, payload: PipelineCreateIn) -> Status:
    """A pipeline run of a protocol: every step a DRAFT job in one folder; upload to `upload_job_id` next."""
    pipeline = services.create_pipeline(user=request.auth, request=_request(payload))
    return Status(201, _detail(access_pipeline(user=request.auth, pipeline_id=pipeline.pk)))


@router.post("/pipelines/preview", response={200: PipelinePreviewOut, **error_responses(404, 409)})
def preview_pipeline(request: HttpRequest, payload: PipelineCreateIn) -> dict[str, Any]:
    """Every step the same body would create, rendered (config, batch script, cost), and the total cost; creates
    nothing. A step that cannot be rendered carries its problems (the wizard's live preview, as JSON)."""
    preview = services.preview_pipeline(user=request.auth, request=_request(payload))
    return {
        "steps": [_step_preview(step) for step in preview.steps],
        "problems": preview.problems,
        "problem_count": preview.problem_count,
        "total_cost": preview.total_cost,
        "steps_without_cost": preview.steps_without_cost,
        "budget": preview.budget,
    }


@router.get("/pipelines", response=PipelinePage)
def list_pipelines(
    request: HttpRequest,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    page_size: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
) -> dict[str, Any]:
    """Your pipeline runs (all runs for a lab admin), newest first."""
    pipelines = visible_pipeline_rows(request.auth)
    start = (page - 1) * page_size
    chosen = pipelines[start : start + page_size]
    items = [_out(pipeline, list(pipeline.steps.all())) for pipeline in chosen]
    return {"items": items, "count": visible_pipelines(request.auth).count(), "page": page, "page_size": page_size}


@router.get("/pipelines/{int:pipeline_id}", response=PipelineDetailOut)
def get_pipeline(request: HttpRequest, pipeline_id: int) -> dict[str, Any]:
    return _detail(access_pipeline(user=request.auth, pipeline_id=pipeline_id))


@router.post("/pipelines/{int:pipeline_id}/submit", response={202: PipelineAcceptedOut, **error_responses(409)})
def submit_pipeline(request: HttpRequest, pipeline_id: int) -> Status:
    """Queue every step not yet submitted as one SLURM afterok chain."""
    _, task_id = services.request_submit_pipeline(user=request.auth, pipeline_id=pipeline_id)
    return _accepted(pipeline_id, task_id, request.auth)


@router.post("/pipelines/{int:pipeline_id}/cancel", response={202: PipelineAcceptedOut, **error_responses(409)})
def cancel_pipeline(request: HttpRequest, pipeline_id: int) -> Status:
    """Cancel every step not ended: waiting ones at once, queued ones by one scancel."""
    _, task_id = services.request_cancel_pipeline(user=request.auth, pipeline_id=pipeline_id)
    return _accepted(pipeline_id, task_id, request.auth)


@router.post("/pipelines/{int:pipeline_id}/resume", response={200: PipelineDetailOut, **error_responses(409)})
def resume_pipeline(request: HttpRequest, pipeline_id: int, payload: PipelineResumeIn) -> dict[str, Any]:
    """New jobs from the step that did not complete on, with the values given; then submit the run."""
    services.resume_pipeline(
        user=request.auth, pipeline_id=pipeline_id, values=payload.values, stage_values=payload.stage_values
    )
    return _detail(access_pipeline(user=request.auth, pipeline_id=pipeline_id))


@router.post("/pipelines/{int:pipeline_id}/clone", response={201: PipelineDetailOut, **error_responses(409)})
def clone_pipeline(request: HttpRequest, pipeline_id: int) -> Status:
    """A new run of the same protocol, cluster, values and resources (the protocol's latest versions)."""
    pipeline = services.clone_pipeline(user=request.auth, pipeline_id=pipeline_id)
    return Status(201, _detail(access_pipeline(user=request.auth, pipeline_id=pipeline.pk)))


@router.get("/pipelines/{int:pipeline_id}/energies", response=PipelineEnergiesOut)
def get_energies(
    request: HttpRequest, pipeline_id: int, columns: str = "TOTAL,POTENTIAL,KINETIC,TEMP"
) -> dict[str, Any]:
    """One energy plot across every step, on one continuous step axis."""
    wanted = [column.strip().upper() for column in columns.split(",") if column.strip()][:MAX_ENERGY_COLUMNS]
    return pipeline_energies(access_pipeline(user=request.auth, pipeline_id=pipeline_id), wanted)
