"""Pipeline runs and sweeps made by the services without cluster contact, and their steps' documents."""

from __future__ import annotations

import json
from typing import Any

from jobs import services
from jobs.metadata import job_json_bytes
from jobs.models import Job, JobState, Pipeline
from templates_app.models import Protocol, ProtocolStage, Template
from templates_app.protocol_services import save_protocol
from tests.jobs.unit_jobs import RESOURCES, VALUES

PROTOCOL_SLUG = "min-then-eq"


def two_stage_protocol() -> Protocol:
    """Vacuum minimization, then an NPT equilibration from its restart files (the built-ins must be loaded)."""
    return save_protocol(
        protocol=Protocol(name="Minimize then equilibrate", slug=PROTOCOL_SLUG),
        stages=[
            ProtocolStage(
                position=1,
                name="minimization",
                template=Template.objects.get(slug="vacuum-minimization"),
                continuation="first",
                values={"output_name": "min"},
            ),
            ProtocolStage(
                position=2,
                name="equilibration",
                template=Template.objects.get(slug="npt-equilibration"),
                continuation="restart",
                values={"output_name": "eq"},
            ),
        ],
    )


def new_pipeline(user, profile, protocol: Protocol, **request: Any) -> Pipeline:
    """A run of `protocol` on the `cpu` recipe with the water box's values, every step a DRAFT job."""
    return services.create_pipeline(
        user=user,
        request=services.PipelineRequest(
            protocol_id=protocol.pk,
            cluster_id=profile.pk,
            recipe="cpu",
            title=request.pop("title", "water run"),
            values=request.pop("values", dict(VALUES)),
            stage_values=request.pop("stage_values", {2: {"run_steps": 200}}),
            resources=RESOURCES,
            **request,
        ),
    )


def queue_steps(pipeline: Pipeline, first_id: int = 500) -> list[Job]:
    """The run's steps as SLURM took them: PENDING with ids in order (rows only)."""
    steps = list(pipeline.steps.order_by("position"))
    for offset, step in enumerate(steps):
        Job.objects.filter(pk=step.pk).update(
            state=JobState.PENDING, slurm_job_id=str(first_id + offset), slurm_state="PENDING"
        )
        step.refresh_from_db()
    return steps


def step_documents(steps: list[Job]) -> list[tuple[str, dict[str, Any]]]:
    """(path, document) of each step: `<step>.json` in the run's project folder."""
    return [(f"{step.project_dir}/{step.metadata_path}", json.loads(job_json_bytes(step))) for step in steps]
