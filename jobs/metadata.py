"""`job.json`: the schema-versioned record of a job kept in its project dir on the cluster.

Rewritten on each transition, it lets the portal rebuild its records from a member's project root
("discover jobs") if its database is lost. Builds and reads the document; never touches the cluster.
A document read back is the member's text, not the portal's: every field is checked for its type, form
and length here; what needs the database (template, cluster limits, folders) is checked by discovery.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from jobs.models import EDITABLE_STATES, QUEUED_STATES, Job, JobState
from portal.errors import InvalidInput

SCHEMA = "namd-portal/job"
SCHEMA_VERSION = 1
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


def job_json_bytes(job: Job) -> bytes:
    return json.dumps(job_document(job), indent=1, sort_keys=True).encode()


SLURM_JOB_ID_PATTERN = r"^[0-9]{1,10}$"  # SLURM ids are 32-bit; the portal submits no arrays (no `_N`)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # template and cluster slugs
DB_INT = {"ge": -(2**31), "le": 2**31 - 1}  # what an integer column holds


def _max_chars(name: str) -> int:
    """The length of Job's column `name`: a document's text fits the row it would become."""
    return int(Job._meta.get_field(name).max_length)  # type: ignore[arg-type]


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


class _Document(_Strict):
    """Schema version 1 of job.json, exactly as `job_document` writes it."""

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
    slurm_job_id: str
    state: JobState
    project_dir: str
    scratch_dir: str
    submitted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None


class JobDocumentInvalid(InvalidInput):
    """A job.json the portal will not import: not JSON, not ours, or a field that breaks its rules."""

    code = "JOB_JSON_INVALID"
    user_message = "This job.json is not one the portal can import; the job folder was left as it is."


def parse_job_document(text: str) -> DiscoveredJob:
    """A job.json read back, every field checked. Raises JobDocumentInvalid: JOB_JSON_MALFORMED (not a JSON
    object), JOB_JSON_NOT_OURS (another schema or version), JOB_JSON_FIELD_INVALID, JOB_JSON_INCONSISTENT."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser goes
        raise JobDocumentInvalid("job.json is not JSON.", code="JOB_JSON_MALFORMED") from exc
    if not isinstance(raw, dict):
        raise JobDocumentInvalid("job.json is not a JSON object.", code="JOB_JSON_MALFORMED")
    if raw.get("schema") != SCHEMA or raw.get("schema_version") != SCHEMA_VERSION:
        raise JobDocumentInvalid(
            "job.json is not a namd-portal job record of schema version 1.", code="JOB_JSON_NOT_OURS"
        )
    try:
        document = _Document.model_validate_json(text)
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
        slurm_job_id=document.slurm_job_id or "",
        state=document.state,
        project_dir=document.project_dir,
        scratch_dir=document.scratch_dir,
        submitted_at=document.submitted_at,
        started_at=document.started_at,
        ended_at=document.ended_at,
    )


def _check_consistent(document: _Document) -> None:
    """A SLURM id exactly when the state says the job reached SLURM; a run that ends after it starts."""
    if document.slurm_job_id and document.state in EDITABLE_STATES:
        raise JobDocumentInvalid(f"job.json names a SLURM id for a {document.state} job.", code="JOB_JSON_INCONSISTENT")
    if not document.slurm_job_id and document.state in QUEUED_STATES:
        raise JobDocumentInvalid(
            f"job.json names no SLURM id for a {document.state} job.", code="JOB_JSON_INCONSISTENT"
        )
    if document.started_at and document.ended_at and document.ended_at < document.started_at:
        raise JobDocumentInvalid("job.json says the job ended before it started.", code="JOB_JSON_INCONSISTENT")
