"""API shapes for sweeps."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema

from jobs.sweep_points import MAX_POINTS
from templates_app.schemas import ResourcesIn

AxisValue = int | float | bool | str


class SweepAxisIn(Schema):
    name: str = Field(max_length=100, description="A variable of the template (or a protocol's shared value).")
    values: list[AxisValue] = Field(min_length=1, max_length=MAX_POINTS)


class SweepCreateIn(Schema):
    template_id: int | None = Field(default=None, description="Sweep a template (each point one job)...")
    protocol_id: int | None = Field(default=None, description="...or a protocol (each point one pipeline run).")
    cluster_id: int
    recipe: str = Field(description="The launch recipe's name on that cluster.")
    title: str = Field(default="", max_length=200)
    mode: Literal["grid", "list", "replicas"] = Field(
        default="grid",
        description="grid: every combination of the axes; list: the axes side by side (equal lengths); "
        "replicas: `replicas` points differing only in `seed`, drawn from `base_seed`.",
    )
    axes: list[SweepAxisIn] = Field(default=[], max_length=16)
    values: dict[str, Any] = Field(default={}, description="The base values; each point's swept values override them.")
    stage_values: dict[int, dict[str, Any]] = Field(default={}, description="A protocol's per-stage overrides.")
    resources: ResourcesIn
    replicas: int | None = Field(default=None, ge=1, le=MAX_POINTS)
    base_seed: int | None = Field(default=None, ge=1, le=2_147_483_647)
    max_running: int | None = Field(
        default=None, ge=1, le=MAX_POINTS, description="At most this many points submitted and not settled at once."
    )
    submit: bool = Field(default=False, description="Start the points as soon as the inputs are in (as /submit).")


class SweepOut(Schema):
    id: int
    uuid: str
    title: str
    owner: str
    cluster_id: int
    cluster: str
    kind: Literal["template", "protocol"]
    template: str | None
    template_version: int | None
    protocol: str | None
    mode: str
    axes: list[dict[str, Any]] = Field(description="[{name, values}]; replicas: the seed axis with its base_seed.")
    max_running: int | None
    points: int
    created_at: datetime
    cancel_requested_at: datetime | None


class SweepRowOut(Schema):
    index: int
    values: dict[str, Any]
    state: str = Field(description="The job's state, or the pipeline run's (DRAFT, READY, RUNNING, COMPLETED...).")
    is_waiting: bool = Field(description="Ready and submitted: waits for room under max_running.")
    stage: str
    steps_done: int | None
    steps_total: int | None
    last_step: int | None
    ns_per_day: float | None
    energies: dict[str, float | None] = Field(description="TOTAL, POTENTIAL, KINETIC, TEMP of the last ENERGY line.")
    job_id: int | None = Field(description="The point's job; for a run, the step shown.")
    pipeline_id: int | None
    error_code: str
    error_message: str


class SweepSummaryOut(Schema):
    points: int
    states: dict[str, int]
    waiting: int


class SweepDetailOut(SweepOut):
    inputs_job_id: int | None = Field(
        description="Upload the sweep's inputs here (POST /jobs/{id}/inputs): every point gets them."
    )
    summary: SweepSummaryOut
    rows: list[SweepRowOut]


class SweepPage(Schema):
    items: list[SweepOut]
    count: int
    page: int
    page_size: int


class SweepAcceptedOut(Schema):
    sweep: SweepOut
    task_id: str = Field(description="The task doing the rest; empty when there was nothing to do.")


class FigureSeriesOut(Schema):
    label: str = Field(description="The other swept variables' values this series holds fixed.")
    points: list[tuple[AxisValue, float]] = Field(description="[swept value, figure] pairs.")


class SweepPlotOut(Schema):
    figure: str
    label: str
    unit: str
    axis: str
    series: list[FigureSeriesOut]
