"""API shapes for templates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ninja import Field, Schema

from accounting.budget_schemas import BudgetLineOut
from templates_app.batch_script import Resources


class TemplateOut(Schema):
    id: int
    name: str
    slug: str
    description: str
    category: str
    is_retired: bool
    family: str = Field(description="Templates made together, e.g. the stages of one CHARMM-GUI builder.")
    stage: int
    workdir: str = Field(description="The folder of the job the stage runs in (CHARMM-GUI's namd/), or ''.")
    assets: list[str] = Field(description="Files every job of it gets (paths in the job folder).")
    version: int
    variables_schema: dict[str, Any]


class ResourcesIn(Schema):
    partition: str
    nodes: int = 1
    ntasks_per_node: int = 1
    cpus_per_task: int = 1
    memory_mb: int | None = None
    walltime_s: int = 3600
    gpus: int = 0
    account: str | None = None
    qos: str | None = None

    def as_resources(self) -> Resources:
        """The batch-script generator's resources (`ntasks_per_node` is its `ntasks`)."""
        return Resources(
            partition=self.partition,
            nodes=self.nodes,
            ntasks=self.ntasks_per_node,
            cpus_per_task=self.cpus_per_task,
            memory_mb=self.memory_mb,
            walltime_s=self.walltime_s,
            gpus=self.gpus,
            account=self.account,
            qos=self.qos,
        )


class JobIn(Schema):
    cluster_id: int
    recipe: str = Field(description="The launch recipe's name on that cluster.")
    title: str = Field(default="", max_length=200)
    resources: ResourcesIn


class PreviewIn(Schema):
    values: dict[str, Any] = {}
    job: JobIn | None = Field(default=None, description="Also preview the batch script and the cost on a cluster.")


class CostOut(Schema):
    core_hours: Decimal
    gpu_hours: Decimal
    service_units: Decimal


class PreviewOut(Schema):
    template_id: int
    version: int
    config: str | None
    batch_script: str | None = None
    cost: CostOut | None = None
    problems: list[dict[str, Any]]
    warnings: list[dict[str, Any]] = Field(default=[], description="Shown, never blocking.")
    cluster_commands: list[dict[str, Any]] = Field(default=[], description="What it runs on the cluster.")
    files_read: list[dict[str, Any]] = Field(default=[], description="The files the config reads, with their lines.")
    budget: list[BudgetLineOut] = Field(default=[], description="What the job would use of each budget in force.")


class StageTemplateOut(Schema):
    id: int
    slug: str
    name: str


class ProtocolStageOut(Schema):
    position: int
    name: str
    template: StageTemplateOut
    version: int = Field(description="The template version a run made now uses: its latest.")
    repeat: int = Field(description="How many steps the stage runs, each continuing from the one before.")
    continuation: str = Field(
        description="first (the member's inputs), restart (the previous step's .coor/.vel/.xsc and its last step) "
        "or charmm_gui (the previous step's output name in `input_variable`)."
    )
    input_variable: str
    values: dict[str, Any] = Field(description="The stage's own values, over the protocol's shared ones.")
    resources: dict[str, Any] = Field(description="The stage's resources, over the run's.")
    recipe_name: str = Field(description="Its launch recipe; '' for the run's.")


class PlannedStepOut(Schema):
    position: int = Field(description="From 1, over the whole run.")
    stage_position: int
    label: str = Field(description="e.g. 'production 2/3'.")
    output_name: str = Field(description="The name its outputs get (name.coor, name.vel, name.xsc, ...).")


class ProtocolOut(Schema):
    id: int
    name: str
    slug: str
    description: str
    family: str = Field(description="The template family it was imported from, if any.")
    is_retired: bool
    shared_values: dict[str, Any] = Field(description="Values every stage whose template has the variable gets.")
    stages: list[ProtocolStageOut]
    steps: list[PlannedStepOut] = Field(description="The steps a run of it makes, in order.")
    problems: list[dict[str, str]] = Field(
        description="Why it cannot run as its templates stand now (field, problem); empty when it can."
    )
