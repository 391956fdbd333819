"""`job.json`: the schema-versioned record of a job kept in its project dir on the cluster.

Rewritten on each transition, it lets the portal rebuild its records from a member's project root
("discover jobs") if its database is lost. Builds and reads the document; never touches the cluster.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs.models import Job, JobState

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


class JobDocumentInvalid(ValueError):
    """A job.json that is not ours, not schema version 1, or malformed."""


def _parse_time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def parse_job_document(text: str) -> DiscoveredJob:
    """A job.json read back. Raises JobDocumentInvalid for anything but schema version 1 of ours."""
    try:
        document = json.loads(text)
        if document.get("schema") != SCHEMA or document.get("schema_version") != SCHEMA_VERSION:
            raise JobDocumentInvalid("not a namd-portal job.json of schema version 1")
        slurm_job_id = document.get("slurm_job_id") or ""
        if slurm_job_id and not str(slurm_job_id).isdigit():
            raise JobDocumentInvalid("slurm_job_id is not a number")
        return DiscoveredJob(
            uuid=uuid.UUID(document["uuid"]),
            owner=str(document["owner"]),
            cluster=str(document["cluster"]),
            title=str(document["title"])[:200],
            template_slug=str(document["template"]["slug"]),
            template_version=int(document["template"]["version"]),
            values=dict(document["values"]),
            resources=dict(document["resources"]),
            recipe=str(document["recipe"]),
            slurm_job_id=str(slurm_job_id),
            state=JobState(document["state"]),
            project_dir=str(document["project_dir"]),
            scratch_dir=str(document["scratch_dir"]),
            submitted_at=_parse_time(document.get("submitted_at")),
            started_at=_parse_time(document.get("started_at")),
            ended_at=_parse_time(document.get("ended_at")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, JobDocumentInvalid):
            raise
        raise JobDocumentInvalid(f"job.json is malformed: {exc.__class__.__name__}") from exc
