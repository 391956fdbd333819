"""Request and response bodies of the pipeline-run API (`jobs/pipeline_api.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Field, Schema

from accounting.budget_schemas import BudgetLineOut
from jobs.schemas import JobOut
from templates_app.schemas import CostOut, ResourcesIn


class PipelineCreateIn(Schema):
    protocol_id: int
    cluster_id: int
    recipe: str = Field(description="The launch recipe's name on that cluster (a stage may name its own).")
    title: str = Field(default="", max_length=200)
    values: dict[str, Any] = Field(default={}, description="Asked once: every stage whose template has the variable.")
    stage_values: dict[int, dict[str, Any]] = Field(
        default={}, description='Per stage position, over the shared values, e.g. {"3": {"run_steps": 50000}}.'
    )
    resources: ResourcesIn
    continue_on_timeout: bool = Field(default=True, description="A step SLURM times out continues itself.")


class PipelineResumeIn(Schema):
    values: dict[str, Any] = {}
    stage_values: dict[int, dict[str, Any]] = {}


class PipelineOut(Schema):
    id: int
    uuid: str
    title: str
    owner: str
    protocol_id: int
    protocol: str
    cluster_id: int
    state: str = Field(description="DRAFT, READY, RUNNING, COMPLETED, FAILED or CANCELLED (from its steps).")
    current_position: int | None = Field(description="The step running or next; the failed one when FAILED.")
    steps_done: int
    steps_total: int
    created_at: datetime


class PipelineDetailOut(PipelineOut):
    values: dict[str, Any]
    stage_values: dict[str, dict[str, Any]]
    resources: dict[str, Any]
    recipe: str
    continue_on_timeout: bool
    project_dir: str
    scratch_dir: str
    upload_job_id: int | None = Field(description="Upload the run's inputs to this job (its first waiting step).")
    input_problems: list[dict[str, str]]
    steps: list[JobOut] = Field(description="The current job of every step, in order.")
    history: list[JobOut] = Field(description="Every job the run made, resumed and continued ones too.")


class PipelinePage(Schema):
    items: list[PipelineOut]
    count: int
    page: int
    page_size: int


class PipelineAcceptedOut(Schema):
    pipeline: PipelineOut
    task_id: str = Field(description="The Celery task doing the work; empty when there was nothing to do.")


class PipelineEnergiesOut(Schema):
    titles: list[str]
    series: dict[str, list[tuple[int, float]]] = Field(description="(step on the run's axis, value) per column.")
    starts: list[dict[str, Any]] = Field(description="Where each job of the run starts on the step axis.")


class StepPreviewOut(Schema):
    position: int
    stage_position: int
    label: str = Field(description='The step as the run page names it, e.g. "production 2/3".')
    template: str
    version: int
    output_name: str
    config_path: str
    script_path: str
    config: str | None
    batch_script: str | None
    cost: CostOut | None
    problems: list[dict[str, Any]] = Field(description="Each with its code; a step with problems blocks the run.")
    warnings: list[dict[str, Any]]


class PipelinePreviewOut(Schema):
    steps: list[StepPreviewOut]
    problems: list[dict[str, Any]] = Field(description="What keeps the run from being planned at all.")
    problem_count: int
    total_cost: CostOut | None = Field(description="The steps' estimates summed; null when no step has one.")
    steps_without_cost: int
    budget: list[BudgetLineOut] = Field(description="What the run would use of each budget in force.")
