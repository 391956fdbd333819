"""Where a job lives on a cluster: its two folders' names and the fixed files the portal writes there.

A job has a project folder (persistent) and a scratch folder (where it runs), both named
`<template slug>-<8 hex of the job uuid>` below the member's roots; the portal writes its config
(at the template's config path), `job.sbatch` and `job.json` into the project folder. The SLURM
job-name tag `np-<uuid12>` is built with the batch script (`templates_app.batch_script.job_name`).
Pure: no Django, no SSH.
"""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

CONFIG_FILENAME = "job.namd"  # the config's path when the template names no working folder
SCRIPT_FILENAME = "job.sbatch"
METADATA_FILENAME = "job.json"
RESERVED_NAMES = frozenset({CONFIG_FILENAME, SCRIPT_FILENAME, METADATA_FILENAME})


def folder_name(slug: str, job_uuid: uuid.UUID) -> str:
    """The name of a job's two folders: `<slug>-<8 hex of its uuid>`."""
    return f"{slug}-{job_uuid.hex[:8]}"


def job_dirs(
    *, project_root: PurePosixPath, scratch_root: PurePosixPath, slug: str, job_uuid: uuid.UUID
) -> tuple[str, str]:
    """(project dir, scratch dir) of a new job below the member's two roots."""
    name = folder_name(slug, job_uuid)
    return str(project_root / name), str(scratch_root / name)


def restart_tag(parent_uuid: uuid.UUID) -> str:
    """The stem of the restart files a continuation copies from its parent: `restart-<8 hex>`."""
    return f"restart-{parent_uuid.hex[:8]}"
