"""A job's inputs from an archive: a member's CHARMM-GUI download (`.tgz`, `.tar.gz`, `.zip`) becomes the
job's input tree.

The request streams the archive to the portal's file store and enqueues the unpacking; the task
unpacks it with `jobs.archives` (no absolute paths, `..`, links or devices; size, count and ratio
limits), registers every file under its path in the job folder (checked for the NAMD role the
config gives it) and sends them to the cluster as one stream (`copy_input_batch`). A refused
archive leaves the job as it was, with the reason on the job (`error_code`, `error_message`) and in
its timeline.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from django.db import transaction

from accounts.models import User
from jobs import archives, file_store
from jobs.access import access_job_to_act
from jobs.models import EDITABLE_STATES, Job
from jobs.services.inputs import StagedInput, register_staged_inputs
from jobs.transitions import note
from portal.enqueue import enqueue_on_commit
from portal.errors import Conflict, InvalidInput
from portal.queues import cluster_queue

ARCHIVES_DIR = "archives"


def receive_input_archive(*, user: User, job_id: int, name: str, chunks: Iterable[bytes]) -> str:
    """Store an uploaded archive and enqueue its unpacking; returns the task id.

    Raises NotFound, Conflict (JOB_NOT_EDITABLE), InvalidInput (ARCHIVE_KIND_UNKNOWN, FILE_TOO_LARGE).
    """
    job = access_job_to_act(user=user, job_id=job_id)
    if job.state not in EDITABLE_STATES:
        raise Conflict("Inputs can change only before the job is submitted.", code="JOB_NOT_EDITABLE")
    kind = archives.archive_kind(name)
    if kind is None:
        raise InvalidInput(
            "Send a .tgz, .tar.gz, .tar or .zip archive.", code="ARCHIVE_KIND_UNKNOWN", details={"name": name[:200]}
        )
    staged = file_store.upload_path(job.uuid, ARCHIVES_DIR) / f"{uuid.uuid4().hex}.{kind}"
    file_store.store_chunks(chunks, staged, max_bytes=job.profile.max_upload_bytes)
    with transaction.atomic():
        note(job, "ARCHIVE_RECEIVED", source="user", actor_id=user.pk, detail=f"{name[:200]}: unpacking")
        return enqueue_on_commit(
            "jobs.tasks.unpack_input_archive_task",
            job.pk,
            str(staged),
            kind,
            user.pk,
            queue=cluster_queue(job.profile_id),
        )


def unpack_input_archive(*, job_id: int, archive_path: str, kind: str, acting_user_id: int) -> int:
    """Unpack a staged archive into the job's input tree; returns the number of files registered."""
    user = User.objects.get(pk=acting_user_id)
    job = access_job_to_act(user=user, job_id=job_id)
    archive = Path(archive_path)
    if not archive.is_file():  # a redelivered task whose archive was already unpacked
        return 0
    destination = file_store.upload_path(job.uuid, f"tree-{uuid.uuid4().hex[:12]}")
    limits = archives.ArchiveLimits(max_total_bytes=job.profile.max_upload_bytes)
    try:
        unpacked = archives.unpack_archive(archive, destination, kind=kind, limits=limits)
        staged = [_staged(item) for item in unpacked]
        staged = [item for item in staged if item is not None]
        if not staged:
            raise archives.ArchiveRefused("ARCHIVE_EMPTY", "The archive holds no file.")
        register_staged_inputs(user=user, job=job, staged=staged)
    except (archives.ArchiveRefused, InvalidInput, Conflict) as exc:
        shutil.rmtree(destination, ignore_errors=True)
        _refused(job, getattr(exc, "code", "ARCHIVE_REFUSED"), str(getattr(exc, "message", "") or exc))
        return 0
    finally:
        archive.unlink(missing_ok=True)
    Job.objects.filter(pk=job.pk, error_code__startswith="ARCHIVE_").update(error_code="", error_message="")
    note(job, "ARCHIVE_UNPACKED", source="task", detail=f"{len(staged)} files")
    return len(staged)


def _staged(item: archives.UnpackedFile) -> StagedInput | None:
    """The input an unpacked file becomes; None for a name the portal keeps for itself (job.namd ...)."""
    try:
        name = file_store.clean_input_path(item.relpath)
    except InvalidInput:
        return None
    return StagedInput(name, item.path, item.size_bytes, item.sha256)


def _refused(job: Job, code: str, message: str) -> None:
    text = f"The archive was not used: {message}"[:500]
    Job.objects.filter(pk=job.pk).update(error_code=code[:60], error_message=text)
    note(job, "ARCHIVE_REFUSED", source="task", detail=f"{code}: {message}")
