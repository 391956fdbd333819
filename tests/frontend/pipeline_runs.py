"""Pipeline runs made by the services without cluster contact, and their steps put in states as the sync would."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone

from jobs import services
from jobs.models import Job, JobState, Pipeline
from jobs.pipeline_steps import current_steps
from templates_app.models import Protocol, ProtocolStage, Template
from templates_app.protocol_services import save_protocol
from tests.jobs.unit_jobs import RESOURCES

BUILTIN = "min-equil-prod"
# The built-in protocol's values for the water box of tests/fixtures/namd (its files keep the templates' names).
RUN_VALUES = {"cell_x": 30.0, "cell_y": 30.0, "cell_z": 30.0, "run_steps": 100, "minimize_steps": 50}
NOT_RUN = "STAGE_NOT_RUN"
SLURM_IDS = itertools.count(5000)  # SLURM ids are unique per cluster


def new_run(user, profile, *, protocol: str = BUILTIN, **overrides: Any) -> Pipeline:
    """A DRAFT run made by `create_pipeline` (the built-in protocol unless `protocol` says otherwise)."""
    request = services.PipelineRequest(
        protocol_id=Protocol.objects.get(slug=protocol).pk,
        cluster_id=profile.pk,
        recipe="cpu",
        title=overrides.pop("title", "water run"),
        values={**RUN_VALUES, **overrides.pop("values", {})},
        stage_values=overrides.pop("stage_values", {}),
        resources=RESOURCES,
    )
    return services.create_pipeline(user=user, request=request)


def long_protocol(productions: int) -> Protocol:
    """The built-in stages with `productions` production segments: 2 + productions steps."""
    builtin = Protocol.objects.get(slug=BUILTIN)
    protocol = Protocol(name=f"min, equil, prod x {productions}", slug=f"long-{productions}")
    stages = [
        ProtocolStage(
            position=stage.position,
            name=stage.name,
            template=Template.objects.get(pk=stage.template_id),
            repeat=productions if stage.name == "production" else stage.repeat,
            values=stage.values,
            continuation=stage.continuation,
        )
        for stage in builtin.stages.all()
    ]
    return save_protocol(protocol=protocol, stages=stages)


def set_steps(pipeline: Pipeline, states: list[JobState], **fields: Any) -> list[Job]:
    """The run's current steps in these states as the sync leaves them: queued and run steps have a SLURM id and
    times, ended ones their results back, and the steps after a failed one cancelled as not run."""
    now = timezone.now()
    stopped = None
    for index, (step, state) in enumerate(zip(current_steps(pipeline), states, strict=True)):
        changes: dict[str, Any] = {"state": state, **fields}
        if state not in (JobState.DRAFT, JobState.UPLOADING, JobState.READY):
            changes |= {"slurm_job_id": str(next(SLURM_IDS)), "submitted_at": now - timedelta(minutes=30)}
        if state in (JobState.RUNNING, JobState.COMPLETED, JobState.FAILED):
            changes["started_at"] = now - timedelta(minutes=20 - index)
        if state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED):
            changes |= {"ended_at": now - timedelta(minutes=10 - index), "finished_at": now}
        if state == JobState.CANCELLED and stopped is not None:
            changes |= {"error_code": NOT_RUN, "error_message": f"Not run: step {stopped} ended failed."}
        if state == JobState.FAILED:
            stopped = step.position
        Job.objects.filter(pk=step.pk).update(**changes)
    return current_steps(pipeline)


def copy_run(pipeline: Pipeline, *, owner=None) -> Pipeline:
    """Another run with the same steps in the same states (rows only: cheaper than rendering it again)."""
    copy = Pipeline.objects.get(pk=pipeline.pk)
    copy.pk, copy.uuid = None, uuid.uuid4()
    copy.owner = owner or pipeline.owner
    copy.save()
    for step in pipeline.steps.all():
        step.pk, step.uuid, step.pipeline, step.owner = None, uuid.uuid4(), copy, copy.owner
        step.slurm_job_id = str(next(SLURM_IDS)) if step.slurm_job_id else ""
        step.save()
    return copy
