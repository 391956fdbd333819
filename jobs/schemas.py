"""API shapes for jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Field, Schema

from templates_app.schemas import ResourcesIn


class JobCreateIn(Schema):
    template_id: int
    cluster_id: int
    recipe: str = Field(description="The launch recipe's name on that cluster.")
    title: str = Field(default="", max_length=200)
    values: dict[str, Any] = {}
    resources: ResourcesIn
    continue_on_timeout: bool = False


class JobOut(Schema):
    id: int
    uuid: str
    title: str
    owner: str
    cluster_id: int
    cluster: str
    template: str
    template_version: int
    state: str
    slurm_job_id: str
    slurm_state: str
    slurm_reason: str
    exit_code: int | None
    error_code: str
    error_message: str
    parent_id: int | None
    pipeline_id: int | None = Field(description="The pipeline run it is a step of, if any.")
    position: int | None = Field(description="Its step in that run, from 1.")
    stage_name: str
    created_at: datetime
    submitted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    finished_at: datetime | None
    last_synced_at: datetime | None
    queue_wait_s: float | None
    run_time_s: float | None


class InputOut(Schema):
    id: int
    name: str = Field(description="Its path in the job folder, e.g. namd/toppar/par_all36m_prot.prm.")
    role: str
    size_bytes: int
    sha256: str
    atom_count: int | None
    state: str
    problem_code: str
    problem_message: str
    bytes_uploaded: int
    uploaded_at: datetime | None
    is_template_asset: bool
    facts: dict[str, Any]


class UploadStatusOut(Schema):
    name: str = Field(description="The file name as the portal stores it (sanitized).")
    size: int = Field(description="The whole file's size in bytes, as the client declared it.")
    received: int = Field(description="Bytes the portal already has: send the rest from this offset.")
    max_bytes: int = Field(description="The cluster's per-file upload limit.")


class JobDetailOut(JobOut):
    values: dict[str, Any]
    resources: dict[str, Any]
    recipe: str
    continue_on_timeout: bool
    project_dir: str
    scratch_dir: str
    config: str
    config_path: str = Field(description="Where the config sits in the job folder (a stage's folder, e.g. namd/).")
    batch_script: str
    inputs: list[InputOut]
    input_problems: list[dict[str, str]]
    input_warnings: list[dict[str, Any]] = Field(description="Not blocking, e.g. a restart's step vs firsttimestep.")
    suggested_values: dict[str, Any] = Field(
        description="Values the inputs say (cell, first step); set them with PUT /jobs/{id}/values."
    )


class JobPage(Schema):
    items: list[JobOut]
    count: int
    page: int
    page_size: int


class AcceptedOut(Schema):
    job: JobOut
    task_id: str = Field(description="The Celery task doing the work; empty when there was nothing to do.")


class EventOut(Schema):
    id: int
    kind: str
    old_state: str
    new_state: str
    source: str
    detail: str
    actor: str | None
    created_at: datetime


class ProgressOut(Schema):
    state: str
    first_step: int | None
    last_step: int | None
    total_steps: int
    fraction_done: float | None
    ns_per_day: float | None
    hours_remaining: float | None
    wallclock_s: float | None
    namd_version: str | None = None
    fatal_errors: list[str]
    is_stalled: bool
    stalled_at: datetime | None
    updated_at: datetime | None


class EnergiesOut(Schema):
    titles: list[str]
    series: dict[str, list[list[float]]] = Field(description="Per column, [step, value] pairs.")


class LogsOut(Schema):
    log_tail: str
    stderr_tail: str
    fetched_at: datetime | None


class FilesOut(Schema):
    files: list[dict[str, Any]]
    listed_at: datetime | None


class RestartIn(Schema):
    values: dict[str, Any] = {}
    title: str = Field(default="", max_length=200)
    submit: bool = True


class ValuesIn(Schema):
    values: dict[str, Any] = Field(description="Variables to change; the others keep their values.")


class NextStageIn(Schema):
    template_id: int = Field(description="The next stage's template (e.g. the next of its CHARMM-GUI family).")
    values: dict[str, Any] = {}
    title: str = Field(default="", max_length=200)
    submit: bool = False


class DownloadIn(Schema):
    path: str = Field(max_length=400, description="Relative to the job's project dir, e.g. 'out.coor'.")


class DownloadOut(Schema):
    id: int
    path: str
    state: str
    size_bytes: int
    error_code: str
    error_message: str
    task_id: str = ""


class RefreshOut(Schema):
    task_ids: list[str]
    coalesced: list[bool]


class DiscoverIn(Schema):
    cluster_id: int
