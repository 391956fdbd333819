"""Copying a job's staged inputs from the portal to its project folder on the cluster, as its owner.

One file travels by SFTP with its progress and a sha256 check; many travel as tar streams of small
files (checked by one `sha256sum` on the cluster) plus the large ones by SFTP. Only a transient
cluster fault is retried (the files go back to RECEIVED); any other failure is on the file.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.utils import timezone

from jobs import remote
from jobs.access import access_job_for_task
from jobs.models import InputFile, Job
from jobs.services.readiness import refresh_readiness
from portal.errors import ClusterUnreachable, PortalError

PROGRESS_WRITE_INTERVAL_S = 1.0


def copy_input_file(*, input_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Copy a staged input into the job's project dir, with progress. Raises ClusterUnreachable (retry)."""
    input_file = InputFile.objects.filter(pk=input_id).first()
    if input_file is None:
        return
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=input_file.job_id)
    claimed = InputFile.objects.filter(
        pk=input_id, sha256=input_file.sha256, state__in=[InputFile.State.RECEIVED, InputFile.State.UPLOADING]
    ).update(state=InputFile.State.UPLOADING)
    if not claimed or not input_file.staged_path:
        return
    last_write = [0.0]

    def progress(done: int, _total: int) -> None:
        if time.monotonic() - last_write[0] >= PROGRESS_WRITE_INTERVAL_S:
            last_write[0] = time.monotonic()
            InputFile.objects.filter(pk=input_id, sha256=input_file.sha256).update(bytes_uploaded=done)

    try:
        session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
        remote.make_dirs(session, *remote.input_dirs(job, [input_file.name]))
        session.upload(
            input_file.staged_path, f"{job.project_dir}/{input_file.name}", progress=progress, verify_sha256=True
        )
    except ClusterUnreachable:
        InputFile.objects.filter(pk=input_id, sha256=input_file.sha256).update(state=InputFile.State.RECEIVED)
        raise
    except PortalError as exc:
        InputFile.objects.filter(pk=input_id, sha256=input_file.sha256).update(
            state=InputFile.State.FAILED, problem_code=exc.code, problem_message=exc.user_message[:500]
        )
        refresh_readiness(job)
        return
    mark_copied(input_file)
    refresh_readiness(Job.objects.get(pk=job.pk))


def mark_copied(input_file: InputFile) -> None:
    """The input is on the cluster: its staged copy goes (unless the template's, which is shared)."""
    copied = InputFile.objects.filter(pk=input_file.pk, sha256=input_file.sha256).update(
        state=InputFile.State.UPLOADED,
        bytes_uploaded=input_file.size_bytes,
        uploaded_at=timezone.now(),
        staged_path="",
    )
    if copied and not input_file.is_template_asset:
        Path(input_file.staged_path).unlink(missing_ok=True)


def copy_input_batch(*, job_id: int, input_ids: list[int], acting_user_id: int, task_id: str = "") -> None:
    """Copy many staged inputs into the job's project dir as one stream (tar batches of small files; large
    files streamed one by one, each verified by its upload). Raises ClusterUnreachable (retry)."""
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=job_id)
    candidates = list(
        InputFile.objects.filter(
            job=job, pk__in=input_ids, state__in=[InputFile.State.RECEIVED, InputFile.State.UPLOADING]
        ).exclude(staged_path="")
    )
    InputFile.objects.filter(pk__in=[f.pk for f in candidates]).update(state=InputFile.State.UPLOADING)
    if not candidates:
        return
    batches = remote.tar_batches(candidates)
    try:
        session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
        remote.make_dirs(session, *remote.input_dirs(job, [f.name for f in candidates]))
        for batch in batches:
            session.write_files(
                job.project_dir, {f.name: Path(f.staged_path).read_bytes() for f in batch}, timeout_s=600
            )
        for large in [f for f in candidates if f.size_bytes > remote.TAR_BATCH_BYTES]:
            session.upload(large.staged_path, f"{job.project_dir}/{large.name}", verify_sha256=True)
        batched = [f for batch in batches for f in batch]
        mismatched = remote.sha256_mismatches(session, job, batched) if batched else set()
    except ClusterUnreachable:
        InputFile.objects.filter(pk__in=[f.pk for f in candidates]).update(state=InputFile.State.RECEIVED)
        raise
    except PortalError as exc:
        InputFile.objects.filter(pk__in=[f.pk for f in candidates]).update(
            state=InputFile.State.FAILED, problem_code=exc.code, problem_message=exc.user_message[:500]
        )
        refresh_readiness(job)
        return
    for input_file in candidates:
        if input_file.name in mismatched:
            InputFile.objects.filter(pk=input_file.pk).update(
                state=InputFile.State.FAILED,
                problem_code="COPY_CORRUPTED",
                problem_message="The copy on the cluster differs from the upload; upload it again.",
            )
            continue
        mark_copied(input_file)
    refresh_readiness(Job.objects.get(pk=job.pk))
