"""API endpoints for jobs. Each parses input, makes one access/selector/service call and returns.

Remote work is never done here: actions answer 202 with the job and the id of the task doing it.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse, HttpRequest
from ninja import Query, Router, Status

from jobs import selectors, services
from jobs.access import access_download, access_job, access_job_to_act
from jobs.models import InputFile, Job, StagedDownload
from jobs.schemas import (
    AcceptedOut,
    DiscoverIn,
    DownloadIn,
    DownloadOut,
    EnergiesOut,
    EventOut,
    FilesOut,
    InputOut,
    JobCreateIn,
    JobDetailOut,
    JobPage,
    LogsOut,
    NextStageIn,
    ProgressOut,
    RefreshOut,
    RestartIn,
    UploadStatusOut,
    ValuesIn,
)
from jobs.services import uploads
from portal.errors import Conflict, InvalidInput
from portal.schemas import error_responses

router = Router(tags=["jobs"])
MAX_PAGE_SIZE = 200
MAX_PAGE = 1_000_000  # an offset PostgreSQL takes, far past any lab's jobs
UPLOAD_CHUNK_BYTES = 1024 * 1024
# The one-shot uploads read their multipart body themselves, after checking its declared length (a body
# ninja parsed first would already be on disk): this documents that body.
MULTIPART_FILE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        },
    }
}


def _content_length(request: HttpRequest) -> int | None:
    length = request.META.get("CONTENT_LENGTH", "")
    return int(length) if length.isdigit() else None


def _uploaded_file(request: HttpRequest, job_id: int) -> UploadedFile:
    """The multipart field `file`, once its body's declared length passed the limits. Raises InvalidInput."""
    uploads.check_upload_body(user=request.auth, job_id=job_id, content_length=_content_length(request))
    file = request.FILES.get("file")
    if file is None:
        raise InvalidInput("Send the file in the multipart field 'file'.", code="FILE_FIELD_MISSING")
    return file


def _seconds(delta: Any) -> float | None:
    return delta.total_seconds() if delta is not None else None


def job_out(job: Job) -> dict[str, Any]:
    return {
        "id": job.pk,
        "uuid": str(job.uuid),
        "title": job.title,
        "owner": job.owner.username,
        "cluster_id": job.profile_id,
        "cluster": job.profile.slug,
        "template": job.template_version.template.slug,
        "template_version": job.template_version.number,
        "state": job.state,
        "slurm_job_id": job.slurm_job_id,
        "slurm_state": job.slurm_state,
        "slurm_reason": job.slurm_reason,
        "exit_code": job.exit_code,
        "error_code": job.error_code,
        "error_message": job.error_message,
        "parent_id": job.parent_id,
        "pipeline_id": job.pipeline_id,
        "position": job.position,
        "stage_name": job.stage_name,
        "created_at": job.created_at,
        "submitted_at": job.submitted_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "finished_at": job.finished_at,
        "last_synced_at": job.last_synced_at,
        "queue_wait_s": _seconds(job.queue_wait),
        "run_time_s": _seconds(job.run_time),
    }


def _detail(job: Job) -> dict[str, Any]:
    return {
        **job_out(job),
        "values": job.values,
        "resources": job.resources,
        "recipe": job.recipe_name,
        "continue_on_timeout": job.continue_on_timeout,
        "project_dir": job.project_dir,
        "scratch_dir": job.scratch_dir,
        "config": job.config_text,
        "config_path": job.config_path,
        "batch_script": job.batch_script,
        "inputs": list(job.inputs.all()),
        "input_problems": services.input_problems(job),
        "input_warnings": services.input_warnings(job),
        "suggested_values": services.suggested_values(job),
    }


def _accepted(job_id: int, task_id: str, user: Any) -> Status:
    return Status(202, {"job": job_out(access_job(user=user, job_id=job_id)), "task_id": task_id})


@router.post("/jobs", response={201: JobDetailOut, **error_responses(404, 409)})
def create_job(request: HttpRequest, payload: JobCreateIn) -> Status:
    """A DRAFT job rendered from the template's latest version; upload its inputs next."""
    job = services.create_job(
        user=request.auth,
        request=services.JobRequest(
            template_id=payload.template_id,
            cluster_id=payload.cluster_id,
            recipe=payload.recipe,
            title=payload.title,
            values=payload.values,
            continue_on_timeout=payload.continue_on_timeout,
            resources=payload.resources.as_resources(),
        ),
    )
    return Status(201, _detail(access_job(user=request.auth, job_id=job.pk)))


@router.get("/jobs", response=JobPage)
def list_jobs(
    request: HttpRequest,
    state: str | None = None,
    cluster_id: int | None = None,
    template: str | None = None,
    q: str | None = None,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    page_size: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
) -> dict[str, Any]:
    """Your jobs (all jobs for a lab admin), newest first; `state` takes a comma-separated list."""
    jobs = selectors.job_list(request.auth, state=state, cluster_id=cluster_id, template=template, text=q)
    start = (page - 1) * page_size
    items = [job_out(job) for job in jobs[start : start + page_size]]
    return {"items": items, "count": jobs.count(), "page": page, "page_size": page_size}


@router.get("/jobs/{int:job_id}", response=JobDetailOut)
def get_job(request: HttpRequest, job_id: int) -> dict[str, Any]:
    return _detail(access_job(user=request.auth, job_id=job_id))


@router.post(
    "/jobs/{int:job_id}/inputs",
    response={202: InputOut, **error_responses(409, 413)},
    openapi_extra=MULTIPART_FILE_BODY,
)
def upload_input(request: HttpRequest, job_id: int) -> Status:
    """Upload one input (multipart field `file`); it is checked, then copied to the cluster by a task.

    Its Content-Length must fit the cluster's per-file limit and your storage quota (refused before reading)."""
    file = _uploaded_file(request, job_id)
    input_file = services.receive_input_file(
        user=request.auth, job_id=job_id, name=file.name or "", chunks=file.chunks(UPLOAD_CHUNK_BYTES)
    )
    return Status(202, input_file)


@router.post(
    "/jobs/{int:job_id}/archives",
    response={202: AcceptedOut, **error_responses(409, 413)},
    openapi_extra=MULTIPART_FILE_BODY,
)
def upload_archive(request: HttpRequest, job_id: int) -> Status:
    """Upload the inputs as one archive (multipart field `file`: .tgz, .tar.gz, .tar or .zip, e.g. a CHARMM-GUI
    download); a task unpacks it safely into the job's folder tree and copies it to the cluster as one stream.
    A refused archive is reported on the job (`error_code`, e.g. ARCHIVE_PATH_ESCAPE) and changes nothing."""
    file = _uploaded_file(request, job_id)
    task_id = services.receive_input_archive(
        user=request.auth, job_id=job_id, name=file.name or "", chunks=file.chunks(UPLOAD_CHUNK_BYTES)
    )
    return _accepted(job_id, task_id, request.auth)


@router.get("/jobs/{int:job_id}/uploads/{path:name}", response={200: UploadStatusOut, **error_responses(409, 413)})
def get_upload(request: HttpRequest, job_id: int, name: str, size: int) -> uploads.UploadStatus:
    """How many bytes of the file `name` of `size` bytes the portal already has: send the rest from there."""
    return uploads.upload_status(user=request.auth, job_id=job_id, name=name, size_bytes=size)


@router.put(
    "/jobs/{int:job_id}/uploads/{path:name}",
    response={200: UploadStatusOut, 202: InputOut, **error_responses(400, 409, 413)},
)
def put_upload_chunk(request: HttpRequest, job_id: int, name: str) -> Status:
    """Append one chunk: the raw body with `Content-Range: bytes START-END/TOTAL`, START being `received`.

    The last chunk registers the input (202, then copied to the cluster by a task). The body is streamed from
    the request, never read whole (`request.body` is not touched).
    """
    outcome = uploads.receive_chunk(
        user=request.auth,
        job_id=job_id,
        name=name,
        content_range=request.headers.get("Content-Range", ""),
        content_length=_content_length(request),
        body=request,
    )
    return Status(200 if isinstance(outcome, uploads.UploadStatus) else 202, outcome)


@router.get("/jobs/{int:job_id}/inputs", response=list[InputOut])
def list_inputs(request: HttpRequest, job_id: int) -> list[InputFile]:
    """The job's inputs with their copy progress (bytes_uploaded of size_bytes)."""
    return list(access_job(user=request.auth, job_id=job_id).inputs.all())


@router.post("/jobs/{int:job_id}/submit", response={202: AcceptedOut, **error_responses(409)})
def submit_job(request: HttpRequest, job_id: int) -> Status:
    job, task_id = services.request_submit(user=request.auth, job_id=job_id)
    return _accepted(job.pk, task_id, request.auth)


@router.get("/jobs/{int:job_id}/events", response=list[EventOut])
def list_events(request: HttpRequest, job_id: int) -> list[dict[str, Any]]:
    job = access_job(user=request.auth, job_id=job_id)
    return [
        {
            "id": e.pk,
            "kind": e.kind,
            "old_state": e.old_state,
            "new_state": e.new_state,
            "source": e.source,
            "detail": e.detail,
            "actor": e.actor.username if e.actor else None,
            "created_at": e.created_at,
        }
        for e in job.events.select_related("actor")
    ]


@router.get("/jobs/{int:job_id}/progress", response=ProgressOut)
def get_progress(request: HttpRequest, job_id: int) -> dict[str, Any]:
    """NAMD's progress read from the log: steps, ns/day, time remaining, fatal errors, stall flag."""
    job = access_job(user=request.auth, job_id=job_id)
    progress, log = selectors.job_progress(job)
    return {
        "state": job.state,
        "first_step": log.first_step,
        "last_step": log.last_step,
        "total_steps": log.total_steps,
        "fraction_done": log.fraction_done,
        "ns_per_day": log.ns_per_day,
        "hours_remaining": log.hours_remaining,
        "wallclock_s": log.wallclock_s,
        "namd_version": getattr(log, "namd_version", None),
        "fatal_errors": log.fatal_errors,
        "is_stalled": bool(progress and progress.stalled_at),
        "stalled_at": progress.stalled_at if progress else None,
        "updated_at": progress.updated_at if progress else None,
    }


@router.get("/jobs/{int:job_id}/energies", response=EnergiesOut)
def get_energies(request: HttpRequest, job_id: int, columns: str = "TOTAL,POTENTIAL,KINETIC,TEMP") -> dict[str, Any]:
    """(step, value) series of the ETITLE columns asked for (comma-separated), e.g. TOTAL,TEMP,PRESSURE,VOLUME."""
    _, log = selectors.job_progress(access_job(user=request.auth, job_id=job_id))
    wanted = [column.strip().upper() for column in columns.split(",") if column.strip()][:20]
    return {"titles": log.energy_titles, "series": {c: log.energy_series(c) for c in wanted if c in log.energy_titles}}


@router.get("/jobs/{int:job_id}/logs", response=LogsOut)
def get_logs(request: HttpRequest, job_id: int) -> dict[str, Any]:
    """The last 64 KiB of NAMD's log (SLURM stdout) and of SLURM stderr, as last fetched."""
    progress, _ = selectors.job_progress(access_job(user=request.auth, job_id=job_id))
    if progress is None:
        return {"log_tail": "", "stderr_tail": "", "fetched_at": None}
    return {"log_tail": progress.log_tail, "stderr_tail": progress.stderr_tail, "fetched_at": progress.logs_fetched_at}


@router.post("/jobs/{int:job_id}/logs/refresh", response={202: AcceptedOut})
def refresh_logs(request: HttpRequest, job_id: int) -> Status:
    job = access_job_to_act(user=request.auth, job_id=job_id)
    return _accepted(job.pk, services.request_log_fetch(job=job, user=request.auth), request.auth)


@router.get("/jobs/{int:job_id}/files", response=FilesOut)
def list_files(request: HttpRequest, job_id: int) -> dict[str, Any]:
    """The project dir as last listed (after the job ends, or on POST .../files/refresh)."""
    progress, _ = selectors.job_progress(access_job(user=request.auth, job_id=job_id))
    return {
        "files": progress.project_files if progress else [],
        "listed_at": progress.files_listed_at if progress else None,
    }


@router.post("/jobs/{int:job_id}/files/refresh", response={202: AcceptedOut})
def refresh_files(request: HttpRequest, job_id: int) -> Status:
    return _accepted(job_id, services.request_file_listing(user=request.auth, job_id=job_id), request.auth)


def _download_out(download: StagedDownload, task_id: str = "") -> dict[str, Any]:
    return {
        "id": download.pk,
        "path": download.relpath,
        "state": download.state,
        "size_bytes": download.size_bytes,
        "error_code": download.error_code,
        "error_message": download.error_message,
        "task_id": task_id,
    }


@router.post("/jobs/{int:job_id}/downloads", response={202: DownloadOut})
def request_download(request: HttpRequest, job_id: int, payload: DownloadIn) -> Status:
    """Fetch a project-dir file to the portal; poll GET .../downloads/{id}, then GET .../content."""
    download, task_id = services.request_download(user=request.auth, job_id=job_id, relpath=payload.path)
    return Status(202, _download_out(download, task_id))


@router.get("/jobs/{int:job_id}/downloads/{int:download_id}", response=DownloadOut)
def get_download(request: HttpRequest, job_id: int, download_id: int) -> dict[str, Any]:
    return _download_out(access_download(user=request.auth, job_id=job_id, download_id=download_id))


@router.get("/jobs/{int:job_id}/downloads/{int:download_id}/content", response={200: None, **error_responses(409)})
def download_content(request: HttpRequest, job_id: int, download_id: int) -> FileResponse:
    """The file, streamed from the portal's copy. Raises Conflict: DOWNLOAD_NOT_READY while it is fetched,
    DOWNLOAD_FAILED (with the reason) if fetching it failed."""
    download = access_download(user=request.auth, job_id=job_id, download_id=download_id)
    if download.state == StagedDownload.State.FAILED:
        raise Conflict(f"The download failed: {download.error_message or download.error_code}", code="DOWNLOAD_FAILED")
    if download.state != StagedDownload.State.READY:
        raise Conflict("The file is not on the portal yet; poll the download.", code="DOWNLOAD_NOT_READY")
    name = download.relpath.rsplit("/", 1)[-1]
    return FileResponse(open(download.local_path, "rb"), as_attachment=True, filename=name)


@router.post("/jobs/{int:job_id}/cancel", response={202: AcceptedOut, **error_responses(409)})
def cancel_job(request: HttpRequest, job_id: int) -> Status:
    """Cancel: at once before submission; otherwise scancel, and the state changes when SLURM confirms."""
    job, task_id = services.request_cancel(user=request.auth, job_id=job_id)
    return _accepted(job.pk, task_id, request.auth)


@router.post("/jobs/{int:job_id}/restart", response={202: AcceptedOut, **error_responses(409)})
def restart_job(request: HttpRequest, job_id: int, payload: RestartIn) -> Status:
    """A new job continuing this one from its last restart files and step (submitted when ready, by default)."""
    job, task_id = services.request_restart(
        user=request.auth, job_id=job_id, values=payload.values, title=payload.title, submit=payload.submit
    )
    return _accepted(job.pk, task_id, request.auth)


@router.put("/jobs/{int:job_id}/values", response={200: JobDetailOut, **error_responses(409)})
def set_values(request: HttpRequest, job_id: int, payload: ValuesIn) -> dict[str, Any]:
    """New values for a job not yet submitted (e.g. its `suggested_values`): config and script rendered again."""
    return _detail(services.update_job_values(user=request.auth, job_id=job_id, values=payload.values))


@router.post("/jobs/{int:job_id}/next-stage", response={202: AcceptedOut, **error_responses(409)})
def next_stage(request: HttpRequest, job_id: int, payload: NextStageIn) -> Status:
    """A new job of another template (the next stage of a protocol, e.g. CHARMM-GUI's step5 after step4) that
    starts from a copy of this finished job's folder, its results included; a task makes the copy."""
    job, task_id = services.request_next_stage(
        user=request.auth,
        job_id=job_id,
        template_id=payload.template_id,
        values=payload.values,
        title=payload.title,
        submit=payload.submit,
    )
    return _accepted(job.pk, task_id, request.auth)


@router.delete("/jobs/{int:job_id}", response={202: dict})
def delete_job(request: HttpRequest, job_id: int) -> Status:
    """Soft-delete: cancelled if active; its folders on the cluster are removed (only inside your roots)."""
    return Status(202, {"task_id": services.request_delete(user=request.auth, job_id=job_id)})


@router.post("/jobs/{int:job_id}/refresh", response={202: RefreshOut})
def refresh_job(request: HttpRequest, job_id: int) -> Status:
    """Ask SLURM about this job now (as its owner: yours only); a request while a sync of its group runs joins it."""
    job = access_job_to_act(user=request.auth, job_id=job_id)
    results = services.request_member_refresh(user_id=job.owner_id, job=job)
    return Status(202, {"task_ids": [r[0] for r in results], "coalesced": [r[1] for r in results]})


@router.post("/jobs/refresh", response={202: RefreshOut})
def refresh_my_jobs(request: HttpRequest) -> Status:
    results = services.request_member_refresh(user_id=request.auth.pk)
    return Status(202, {"task_ids": [r[0] for r in results], "coalesced": [r[1] for r in results]})


@router.post("/jobs/discover", response={202: dict, **error_responses(404)})
def discover_jobs(request: HttpRequest, payload: DiscoverIn) -> Status:
    """Re-import your jobs from the job.json files in your project root on a cluster."""
    return Status(202, {"task_id": services.request_discovery(user=request.auth, cluster_id=payload.cluster_id)})
