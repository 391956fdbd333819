"""A job's inputs arriving on the portal: which files its config reads, receiving and registering uploads.

A complete staged file is checked for the NAMD role its config gives it, recorded as an InputFile and
its copy to the cluster enqueued (`jobs.services.input_copy`). Touches no cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from jobs import file_store, input_facts, layout
from jobs.access import access_job_to_act
from jobs.models import EDITABLE_STATES, InputFile, Job, JobState
from jobs.namd_files import ROLE_CHECKS, InputFileInvalid
from jobs.pipeline_steps import current_steps, produced_prefixes
from jobs.transitions import transition
from portal.enqueue import enqueue_on_commit
from portal.errors import Conflict
from portal.queues import cluster_queue
from templates_app.namd_config import FileRead, check_config


def input_reads(config: str, config_path: str = layout.CONFIG_FILENAME) -> list[FileRead]:
    """The files a job's config reads (as NAMD evaluates it), except those it makes on the cluster first."""
    check = check_config(config, config_path=config_path, config_only=True)
    return [read for read in check.files_read if not read.made_on_cluster]


def input_roles(config: str, config_path: str = layout.CONFIG_FILENAME) -> dict[str, str]:
    """File path in the job folder -> the NAMD keyword (lower case) that reads it, from a job's config."""
    return {read.path: read.keyword.lower() for read in input_reads(config, config_path)}


def job_reads(job: Job) -> list[FileRead]:
    """The files a job needs from its member: its config's reads; for a pipeline step that holds the run's
    inputs, the reads of every step from it on, except files an earlier step writes (`equilibration.coor`)."""
    if job.pipeline_id is None:
        return input_reads(job.config_text, job.config_path)
    steps = current_steps(job.pipeline)
    prefixes = dict(zip([step.position for step in steps], produced_prefixes(steps), strict=True))
    reads: dict[str, FileRead] = {}
    for step in steps:
        if step.position < (job.position or 0):
            continue
        made_before = tuple(prefix for position, prefix in prefixes.items() if prefix and position < step.position)
        if step.parent_id is not None and prefixes[step.position]:  # a continuation reads its parent's restart files
            made_before += (prefixes[step.position],)
        for read in input_reads(step.config_text, step.config_path):
            if read.path not in reads and not read.path.startswith(made_before):
                reads[read.path] = read
    return list(reads.values())


def job_roles(job: Job) -> dict[str, str]:
    """`input_roles` of `job_reads`: file path -> the NAMD keyword (lower case) reading it."""
    return {read.path: read.keyword.lower() for read in job_reads(job)}


def uploaded_copy(item: InputFile, *, job: Job, source_dir: str) -> InputFile:
    """An unsaved UPLOADED input of `job`: `item` (an input of another job, in `source_dir`), copied on the cluster."""
    return InputFile(
        job=job,
        name=item.name,
        role=item.role,
        size_bytes=item.size_bytes,
        sha256=item.sha256,
        atom_count=item.atom_count,
        state=InputFile.State.UPLOADED,
        bytes_uploaded=item.size_bytes,
        copied_from=f"{source_dir}/{item.name}",
        is_template_asset=item.is_template_asset,
        facts=item.facts,
        uploaded_at=item.uploaded_at or timezone.now(),
    )


def _check_staged(role: str, path: Any) -> tuple[int | None, str, str]:
    """(atom count, problem code, problem message) of one staged input checked for its role."""
    check = ROLE_CHECKS.get(role)
    if check is None:
        return None, "", ""
    try:
        result = check(path)
    except InputFileInvalid as exc:
        return None, exc.code, str(exc)[:500]
    return (result if isinstance(result, int) else None), "", ""


def receive_input_file(*, user: User, job_id: int, name: str, chunks: Iterable[bytes]) -> InputFile:
    """Store an uploaded input (streamed to disk, checked for its role), then copy it to the cluster in a task.

    Raises NotFound, Conflict (JOB_NOT_EDITABLE), InvalidInput (FILENAME_INVALID, FILENAME_RESERVED, FILE_TOO_LARGE).
    """
    job = access_job_to_act(user=user, job_id=job_id)
    if job.state not in EDITABLE_STATES:
        raise Conflict("Inputs can change only before the job is submitted.", code="JOB_NOT_EDITABLE")
    clean = file_store.clean_input_path(name)
    staged = file_store.upload_path(job.uuid, file_store.staged_name(clean))
    size, sha256 = file_store.store_chunks(chunks, staged, max_bytes=job.profile.max_upload_bytes)
    return register_staged_input(user=user, job=job, name=clean, staged=staged, size_bytes=size, sha256=sha256)


@dataclasses.dataclass(frozen=True)
class StagedInput:
    """A complete file on the portal's disk, to become the job's input at `name` (a path in the job folder)."""

    name: str
    path: Path
    size_bytes: int
    sha256: str
    is_template_asset: bool = False  # its copy is the template's, shared: never removed


def register_staged_input(*, user: User, job: Job, name: str, staged: Path, size_bytes: int, sha256: str) -> InputFile:
    """Check a complete staged file (its name already cleaned) for its role, record it, enqueue its copy.

    Shared by the one-shot and the resumable uploads. Raises Conflict (JOB_NOT_EDITABLE; the staged file is removed).
    """
    (input_file,) = register_staged_inputs(user=user, job=job, staged=[StagedInput(name, staged, size_bytes, sha256)])
    return input_file


def register_staged_inputs(*, user: User, job: Job, staged: list[StagedInput]) -> list[InputFile]:
    """Check staged files for their roles, record them and enqueue their copy: one task for a single file,
    one stream for many (an archive's files, a template's assets). Raises Conflict (JOB_NOT_EDITABLE)."""
    roles = job_roles(job)
    # Files are read before the row lock is taken: a lock is never held while disks are read.
    checked = {item.name: _check_staged(roles.get(item.name, ""), item.path) for item in staged}
    facts = {item.name: input_facts.file_facts(item.name, item.path) for item in staged}
    with transaction.atomic():
        job = access_job_to_act(user=user, job_id=job.pk, for_update=True)
        if job.state not in EDITABLE_STATES:
            for item in staged:
                if not item.is_template_asset:
                    item.path.unlink(missing_ok=True)
            raise Conflict("Inputs can change only before the job is submitted.", code="JOB_NOT_EDITABLE")
        replaced = InputFile.objects.filter(job=job, name__in=[item.name for item in staged], is_template_asset=False)
        previous = dict(replaced.values_list("name", "staged_path"))
        registered, to_copy = [], []
        for item in staged:
            atom_count, problem_code, problem_message = checked[item.name]
            state = InputFile.State.INVALID if problem_code else InputFile.State.RECEIVED
            input_file, _ = InputFile.objects.update_or_create(
                job=job,
                name=item.name,
                defaults={
                    "role": roles.get(item.name, ""),
                    "size_bytes": item.size_bytes,
                    "sha256": item.sha256,
                    "atom_count": atom_count,
                    "state": state,
                    "problem_code": problem_code,
                    "problem_message": problem_message,
                    "bytes_uploaded": 0,
                    "staged_path": "" if problem_code else str(item.path),
                    "copied_from": "",
                    "uploaded_at": None,
                    "is_template_asset": item.is_template_asset,
                    "facts": facts[item.name],
                },
            )
            registered.append(input_file)
            if problem_code and not item.is_template_asset:
                item.path.unlink(missing_ok=True)
            elif not problem_code:
                to_copy.append(input_file.pk)
        if job.state != JobState.UPLOADING:
            detail = f"input {staged[0].name}" if len(staged) == 1 else f"{len(staged)} inputs"
            transition(job, JobState.UPLOADING, source="user", actor_id=user.pk, detail=detail)
        if len(to_copy) == 1 and len(staged) == 1:
            enqueue_on_commit(
                "jobs.tasks.copy_input_file_task", to_copy[0], user.pk, queue=cluster_queue(job.profile_id)
            )
        elif to_copy:
            enqueue_on_commit(
                "jobs.tasks.copy_input_batch_task", job.pk, to_copy, user.pk, queue=cluster_queue(job.profile_id)
            )
    for item in staged:
        old = previous.get(item.name)
        if old and old != str(item.path):
            Path(old).unlink(missing_ok=True)
    return registered
