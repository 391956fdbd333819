"""`job.json`: the schema-versioned record of a job kept in its project dir on the cluster.

Rewritten on each transition, it lets the portal rebuild its records from a member's project root
("discover jobs") if its database is lost. A pipeline step's record is `<step>.json` beside its script
(`Job.metadata_path`), as the steps share one folder. Version 2 adds the pipeline run a step belongs to
(its run's values, resources and recipe, so that a re-imported run can resume) and the sweep point a
job or run is; version-1 documents (without them) are still read. Builds and reads the document; never
touches the cluster. A document read back is the member's text, not the portal's: every field is checked
for its type, form and length here; what needs the database (template, protocol, cluster limits,
folders) is checked by discovery.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from django.core.exceptions import ObjectDoesNotExist
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from jobs.models import EDITABLE_STATES, QUEUED_STATES, Job, JobState, Pipeline, Sweep, SweepPoint
from portal.errors import InvalidInput
from templates_app.protocols import MAX_STEPS

SCHEMA = "namd-portal/job"
SCHEMA_VERSION = 2
READ_VERSIONS = (1, 2)
MAX_JOB_JSON_BYTES = 1024 * 1024


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def job_document(job: Job) -> dict[str, Any]:
    version = job.template_version
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "uuid": str(job.uuid),
        "owner": job.owner.username,
        "cluster": job.profile.slug,
        "title": job.title,
        "template": {"slug": version.template.slug, "version": version.number},
        "values": job.values,
        "resources": job.resources,
        "recipe": job.recipe_name,
        "parent_uuid": str(job.parent.uuid) if job.parent_id else None,
        "slurm_job_id": job.slurm_job_id or None,
        "state": job.state,
        "slurm_state": job.slurm_state,
        "exit_code": job.exit_code,
        "project_dir": job.project_dir,
        "scratch_dir": job.scratch_dir,
        "created_at": _time(job.created_at),
        "submitted_at": _time(job.submitted_at),
        "started_at": _time(job.started_at),
        "ended_at": _time(job.ended_at),
        "pipeline": _pipeline_part(job, job.pipeline) if job.pipeline_id else None,
        "sweep": _sweep_part(job),
        "history": [
            {
                "at": _time(event.created_at),
                "kind": event.kind,
                "old": event.old_state,
                "new": event.new_state,
                "source": event.source,
                "detail": event.detail,
            }
            for event in job.events.order_by("created_at", "id")
        ],
    }


def _pipeline_part(job: Job, pipeline: Pipeline) -> dict[str, Any]:
    """The run a step belongs to: where the step sits in it, and what a resume of the run needs."""
    return {
        "uuid": str(pipeline.uuid),
        "title": pipeline.title,
        "protocol": pipeline.protocol.slug,
        "position": job.position,
        "stage_position": job.protocol_stage.position if job.protocol_stage_id else None,
        "stage_name": job.stage_name,
        "config_path": job.config_path,
        "script_path": job.script_path,
        "values": pipeline.values,
        "stage_values": pipeline.stage_values,
        "resources": pipeline.resources,
        "recipe": pipeline.recipe_name,
        "continue_on_timeout": pipeline.continue_on_timeout,
    }


def sweep_point_of(job: Job) -> SweepPoint | None:
    """The sweep point the job is (a template sweep's) or its pipeline run is (a protocol sweep's)."""
    holder: Job | Pipeline = job.pipeline if job.pipeline_id else job
    try:
        return holder.sweep_point
    except ObjectDoesNotExist:
        return None


def _sweep_part(job: Job) -> dict[str, Any] | None:
    point = sweep_point_of(job)
    if point is None:
        return None
    sweep = point.sweep
    return {
        "uuid": str(sweep.uuid),
        "title": sweep.title,
        "mode": sweep.mode,
        "axes": sweep.axes,
        "max_running": sweep.max_running,
        "index": point.index,
        "values": point.values,
    }


def job_json_bytes(job: Job) -> bytes:
    return json.dumps(job_document(job), indent=1, sort_keys=True).encode()


SLURM_JOB_ID_PATTERN = r"^[0-9]{1,10}$"  # SLURM ids are 32-bit; the portal submits no arrays (no `_N`)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # template, protocol and cluster slugs
# A step's files in the run's folder (`<output name>.sbatch`, `[<workdir>/]<output name>.namd`): names made of
# the characters an output name may have (templates_app.protocols.OUTPUT_NAME_RE); a folder never starts with
# a dot (no `.` or `..` part), and the config's own name cannot be one as it ends in `.namd`.
FOLDER_PART = r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*"
SCRIPT_PATH_PATTERN = r"^[A-Za-z0-9_.+-]{1,100}\.sbatch$"
CONFIG_PATH_PATTERN = rf"^(?:{FOLDER_PART}/)*[A-Za-z0-9_.+-]{{1,100}}\.namd$"
STAGE_POSITION_PATTERN = r"^[0-9]{1,5}$"
DB_INT = {"ge": -(2**31), "le": 2**31 - 1}  # what an integer column holds
MAX_SWEEP_AXES = 32


def _max_chars(name: str, model: type = Job) -> int:
    """The length of `model`'s column `name`: a document's text fits the row it would become."""
    return int(model._meta.get_field(name).max_length)  # type: ignore[attr-defined]


class _Strict(BaseModel):
    """Every field present with its own JSON type (no "3" for 3, no true for 1), and nothing else."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _TemplateRef(_Strict):
    slug: str = Field(min_length=1, max_length=50, pattern=NAME_PATTERN)
    version: int = Field(ge=1, le=DB_INT["le"])


class _Resources(_Strict):
    """`Job.resources` as stored (`templates_app.batch_script.Resources`); limits are checked on the cluster's
    partitions by the same rules as a new job's."""

    partition: str = Field(min_length=1, max_length=64)
    nodes: int = Field(**DB_INT)
    ntasks: int = Field(**DB_INT)
    cpus_per_task: int = Field(**DB_INT)
    memory_mb: int | None = Field(**DB_INT)
    walltime_s: int = Field(**DB_INT)
    gpus: int = Field(**DB_INT)
    account: str | None = Field(max_length=64)
    qos: str | None = Field(max_length=64)


class _HistoryEntry(_Strict):
    at: AwareDatetime | None
    kind: str = Field(max_length=24)
    old: str = Field(max_length=16)
    new: str = Field(max_length=16)
    source: str = Field(max_length=8)
    detail: str = Field(max_length=1000)


class _PipelinePart(_Strict):
    """A step's run (v2): the run's uuid, title and protocol, the step's place, files and stage in it, and the
    run's own values, resources and recipe (a resume renders from them, by a new run's rules then)."""

    uuid: uuid.UUID
    title: str = Field(min_length=1, max_length=_max_chars("title", Pipeline))
    protocol: str = Field(min_length=1, max_length=60, pattern=NAME_PATTERN)
    position: int = Field(ge=1, le=MAX_STEPS)
    stage_position: int | None = Field(ge=1, le=2**15 - 1)
    stage_name: str = Field(max_length=_max_chars("stage_name"))
    config_path: str = Field(max_length=_max_chars("config_path"), pattern=CONFIG_PATH_PATTERN)
    script_path: str = Field(max_length=_max_chars("script_path"), pattern=SCRIPT_PATH_PATTERN)
    values: dict[str, Any]
    stage_values: dict[Annotated[str, Field(pattern=STAGE_POSITION_PATTERN)], dict[str, Any]]
    resources: _Resources
    recipe: str = Field(min_length=1, max_length=_max_chars("recipe_name", Pipeline))
    continue_on_timeout: bool


class _SweepPart(_Strict):
    """The sweep the job or its run is a point of (v2): the sweep's uuid, title, mode, axes and gate, the point's
    index and values."""

    uuid: uuid.UUID
    title: str = Field(min_length=1, max_length=_max_chars("title", Sweep))
    mode: Sweep.Mode
    axes: list[dict[str, Any]] = Field(max_length=MAX_SWEEP_AXES)
    max_running: int | None = Field(ge=1, le=DB_INT["le"])
    index: int = Field(ge=0, le=DB_INT["le"])
    values: dict[str, Any]


class _DocumentV1(_Strict):
    """Schema version 1 of job.json, exactly as the portal wrote it before pipelines and sweeps."""

    schema_: Literal["namd-portal/job"] = Field(alias="schema")
    schema_version: Literal[1]
    uuid: uuid.UUID
    owner: str = Field(min_length=1, max_length=150)
    cluster: str = Field(min_length=1, max_length=50, pattern=NAME_PATTERN)
    title: str = Field(min_length=1, max_length=_max_chars("title"))
    template: _TemplateRef
    values: dict[str, Any]
    resources: _Resources
    recipe: str = Field(min_length=1, max_length=_max_chars("recipe_name"))
    parent_uuid: uuid.UUID | None
    slurm_job_id: str | None = Field(pattern=SLURM_JOB_ID_PATTERN)
    state: JobState
    slurm_state: str = Field(max_length=_max_chars("slurm_state"))
    exit_code: int | None = Field(**DB_INT)
    project_dir: str = Field(min_length=2, max_length=_max_chars("project_dir"))
    scratch_dir: str = Field(min_length=2, max_length=_max_chars("scratch_dir"))
    created_at: AwareDatetime
    submitted_at: AwareDatetime | None
    started_at: AwareDatetime | None
    ended_at: AwareDatetime | None
    history: list[_HistoryEntry] = Field(max_length=10_000)

    @property
    def pipeline_part(self) -> _PipelinePart | None:
        return None

    @property
    def sweep_part(self) -> _SweepPart | None:
        return None


class _Document(_DocumentV1):
    """Schema version 2 of job.json, exactly as `job_document` writes it: version 1 and its pipeline and sweep."""

    schema_version: Literal[2]  # type: ignore[assignment]
    pipeline: _PipelinePart | None
    sweep: _SweepPart | None

    @property
    def pipeline_part(self) -> _PipelinePart | None:
        return self.pipeline

    @property
    def sweep_part(self) -> _SweepPart | None:
        return self.sweep


@dataclass(frozen=True)
class DiscoveredStep:
    """Where a discovered job sits in its pipeline run, and the run's own fields."""

    pipeline_uuid: uuid.UUID
    title: str
    protocol_slug: str
    position: int
    stage_position: int | None
    stage_name: str
    config_path: str
    script_path: str
    values: dict[str, Any]
    stage_values: dict[str, dict[str, Any]]
    resources: dict[str, Any]
    recipe: str
    continue_on_timeout: bool

    @property
    def metadata_name(self) -> str:
        """The step's document beside its script: `<step>.json` (as `Job.metadata_path` names it)."""
        return self.script_path.removesuffix(".sbatch") + ".json"


@dataclass(frozen=True)
class DiscoveredSweepPoint:
    sweep_uuid: uuid.UUID
    title: str
    mode: str
    axes: list[dict[str, Any]]
    max_running: int | None
    index: int
    values: dict[str, Any]


@dataclass(frozen=True)
class DiscoveredJob:
    uuid: uuid.UUID
    owner: str
    cluster: str
    title: str
    template_slug: str
    template_version: int
    values: dict[str, Any]
    resources: dict[str, Any]
    recipe: str
    parent_uuid: uuid.UUID | None
    slurm_job_id: str
    state: JobState
    project_dir: str
    scratch_dir: str
    created_at: datetime
    submitted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    pipeline: DiscoveredStep | None = None
    sweep: DiscoveredSweepPoint | None = None


class JobDocumentInvalid(InvalidInput):
    """A job.json the portal will not import: not JSON, not ours, or a field that breaks its rules."""

    code = "JOB_JSON_INVALID"
    user_message = "This job.json is not one the portal can import; the job folder was left as it is."


def parse_job_document(text: str) -> DiscoveredJob:
    """A job.json (or a step's `<step>.json`) read back, every field checked. Raises JobDocumentInvalid:
    JOB_JSON_MALFORMED (not a JSON object), JOB_JSON_NOT_OURS (another schema or version),
    JOB_JSON_FIELD_INVALID, JOB_JSON_INCONSISTENT."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser goes
        raise JobDocumentInvalid("job.json is not JSON.", code="JOB_JSON_MALFORMED") from exc
    if not isinstance(raw, dict):
        raise JobDocumentInvalid("job.json is not a JSON object.", code="JOB_JSON_MALFORMED")
    version = raw.get("schema_version")
    # `type(...) is int`: JSON's true and 1.0 equal 1 in Python, and pydantic's strict Literal takes them too
    if raw.get("schema") != SCHEMA or type(version) is not int or version not in READ_VERSIONS:
        raise JobDocumentInvalid(
            "job.json is not a namd-portal job record of schema version 1 or 2.", code="JOB_JSON_NOT_OURS"
        )
    model: type[_DocumentV1] = _Document if version == SCHEMA_VERSION else _DocumentV1
    try:
        document = model.model_validate_json(text)
    except ValidationError as exc:
        fields = sorted({".".join(str(part) for part in error["loc"])[:100] for error in exc.errors()})[:20]
        raise JobDocumentInvalid(
            f"job.json has invalid fields: {', '.join(fields)}.",
            code="JOB_JSON_FIELD_INVALID",
            details={"fields": fields},
        ) from exc
    _check_consistent(document)
    return DiscoveredJob(
        uuid=document.uuid,
        owner=document.owner,
        cluster=document.cluster,
        title=document.title,
        template_slug=document.template.slug,
        template_version=document.template.version,
        values=document.values,
        resources=document.resources.model_dump(),
        recipe=document.recipe,
        parent_uuid=document.parent_uuid,
        slurm_job_id=document.slurm_job_id or "",
        state=document.state,
        project_dir=document.project_dir,
        scratch_dir=document.scratch_dir,
        created_at=document.created_at,
        submitted_at=document.submitted_at,
        started_at=document.started_at,
        ended_at=document.ended_at,
        pipeline=_step(document.pipeline_part),
        sweep=_sweep_point(document.sweep_part),
    )


def _step(part: _PipelinePart | None) -> DiscoveredStep | None:
    if part is None:
        return None
    return DiscoveredStep(
        pipeline_uuid=part.uuid,
        title=part.title,
        protocol_slug=part.protocol,
        position=part.position,
        stage_position=part.stage_position,
        stage_name=part.stage_name,
        config_path=part.config_path,
        script_path=part.script_path,
        values=part.values,
        stage_values=part.stage_values,
        resources=part.resources.model_dump(),
        recipe=part.recipe,
        continue_on_timeout=part.continue_on_timeout,
    )


def _sweep_point(part: _SweepPart | None) -> DiscoveredSweepPoint | None:
    if part is None:
        return None
    return DiscoveredSweepPoint(
        sweep_uuid=part.uuid,
        title=part.title,
        mode=part.mode,
        axes=part.axes,
        max_running=part.max_running,
        index=part.index,
        values=part.values,
    )


def _check_consistent(document: _DocumentV1) -> None:
    """A SLURM id exactly when the state says the job reached SLURM; a run that ends after it starts; a step's
    config and script named alike."""
    if document.slurm_job_id and document.state in EDITABLE_STATES:
        raise JobDocumentInvalid(f"job.json names a SLURM id for a {document.state} job.", code="JOB_JSON_INCONSISTENT")
    if not document.slurm_job_id and document.state in QUEUED_STATES:
        raise JobDocumentInvalid(
            f"job.json names no SLURM id for a {document.state} job.", code="JOB_JSON_INCONSISTENT"
        )
    if document.started_at and document.ended_at and document.ended_at < document.started_at:
        raise JobDocumentInvalid("job.json says the job ended before it started.", code="JOB_JSON_INCONSISTENT")
    step = document.pipeline_part
    if step is None:
        return
    if step.config_path.rsplit("/", 1)[-1].removesuffix(".namd") != step.script_path.removesuffix(".sbatch"):
        raise JobDocumentInvalid(
            "job.json names a step whose config and script are not named alike.", code="JOB_JSON_INCONSISTENT"
        )
