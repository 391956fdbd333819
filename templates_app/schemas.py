"""API shapes for templates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ninja import Field, Schema


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
