"""The job detail page and its live parts: the status panel (polled while the job is not terminal), log tails,
the project listing with staged downloads, and the cancel / restart / clone / delete actions.

Views parse input, make one access or service call and render; every job is loaded through
`jobs.access`. Nothing here talks to a cluster: refreshes and downloads are tasks enqueued by
`jobs.services`, and the fragments poll until their results are in.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounting import selectors as accounting_selectors
from jobs import selectors as job_selectors
from jobs import services, sweep_selectors
from jobs.access import access_download, access_job, access_job_to_act, can_act_on, visible_jobs, visible_pipelines
from jobs.models import Job, JobProgress, JobState, StagedDownload
from jobs.namd_log import LogProgress
from portal.errors import Forbidden, NotFound, PortalError

DOWNLOAD_WAIT = timedelta(minutes=15)  # a staged download still copying by then is no longer polled
REFRESH_WAIT_S = 60  # a log or listing refresh that brings nothing new by then is given up (the task may retry)
TERMINAL_EVENT = "job-terminal"  # HX-Trigger sent once a job is settled: job_detail.js reads the plot a last time
ENERGY_COLUMNS = "TOTAL,POTENTIAL,KINETIC,TEMP,PRESSURE,VOLUME"


@dataclass(frozen=True)
class LogKind:
    label: str
    field: str  # the JobProgress field holding its tail
    suffix: str  # of SLURM's file in the scratch dir
    note: str


LOG_KINDS = {
    "namd": LogKind("NAMD log", "log_tail", "out", "NAMD writes its log to SLURM's stdout; this is its end."),
    "stdout": LogKind(
        "SLURM stdout", "log_tail", "out", "The batch script sends NAMD's output here: the same file as the NAMD log."
    ),
    "stderr": LogKind("SLURM stderr", "stderr_tail", "err", "Read when the job ends, or when you refresh."),
}


@dataclass(frozen=True)
class RunProgress:
    """What the status panel shows of NAMD's progress, as last read from the log."""

    steps_done: int | None
    steps_total: int | None
    ns_per_day: float | None
    remaining: str  # e.g. "1 h 5 min"; empty when unknown or over
    eta: datetime | None
    stalled_at: datetime | None
    fatal_errors: list[str]
    has_energies: bool


@dataclass(frozen=True)
class RefreshWait:
    """A refresh the member asked for at `requested_at` (epoch seconds, as sent back by the poll): still waiting
    for its result, or given up."""

    requested_at: str = ""
    is_waiting: bool = False
    gave_up: bool = False


@dataclass(frozen=True)
class LogPanel:
    kind: str
    log_kind: LogKind
    text: str
    file_name: str  # empty before the job has a SLURM id
    fetched_at: datetime | None
    wait: RefreshWait


@dataclass(frozen=True)
class ProjectFile:
    path: str
    is_dir: bool
    size_bytes: int
    modified: datetime


@dataclass(frozen=True)
class FilesPanel:
    files: list[ProjectFile]
    listed_at: datetime | None
    wait: RefreshWait


def duration_text(delta: timedelta | None) -> str:
    """The two largest units: '2 d 3 h', '1 h 5 min', '10 min', '4 min 10 s', '12 s'; empty for None."""
    if delta is None:
        return ""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    first = next((i for i, (amount, _) in enumerate(parts) if amount), len(parts) - 1)
    return " ".join(f"{amount} {unit}" for amount, unit in parts[first : first + 2] if amount or first == 3)


def _run_progress(job: Job, progress: JobProgress | None, log: LogProgress) -> RunProgress:
    first = log.first_step or 0
    steps_total = log.total_steps or (log.numsteps or 0) - first
    steps_done = None
    if log.last_step is not None and steps_total > 0:
        steps_done = max(0, min(steps_total, log.last_step - first))
    remaining, eta = "", None
    if not job.is_terminal and log.hours_remaining and progress is not None:
        left = timedelta(hours=log.hours_remaining)
        remaining, eta = duration_text(left), (progress.last_timing_at or progress.updated_at) + left
    return RunProgress(
        steps_done=steps_done,
        steps_total=steps_total if steps_total > 0 else None,
        ns_per_day=log.ns_per_day,
        remaining=remaining,
        eta=eta,
        stalled_at=progress.stalled_at if progress and not job.is_terminal else None,
        fatal_errors=log.fatal_errors,
        has_energies=bool(log.energies),
    )


def _refresh_wait(raw: str | None, done_at: datetime | None) -> RefreshWait:
    """Whether a fragment keeps polling: until `done_at` passes the request time, for REFRESH_WAIT_S at most."""
    now = time.time()
    try:
        requested_at = float(raw) if raw else None
    except ValueError:
        requested_at = None
    if requested_at is None or not math.isfinite(requested_at) or requested_at > now:
        return RefreshWait()
    if done_at is not None and done_at.timestamp() >= requested_at:
        return RefreshWait()
    expired = now - requested_at > REFRESH_WAIT_S
    return RefreshWait(requested_at=repr(requested_at), is_waiting=not expired, gave_up=expired)


def _status_context(request: HttpRequest, job: Job, progress: JobProgress | None, log: LogProgress) -> dict[str, Any]:
    """What the status panel and the parts it refreshes (state line, facts, actions) show."""
    visible = visible_jobs(request.user)
    return {
        "job": job,
        "run": _run_progress(job, progress, log),
        "events": job.events.select_related("actor"),
        "parent": visible.filter(pk=job.parent_id).first() if job.parent_id else None,
        "children": visible.filter(parent=job).order_by("created_at"),
        "queue_wait": duration_text(job.queue_wait),
        "run_time": duration_text(job.run_time),
        "walltime": duration_text(timedelta(seconds=job.resources.get("walltime_s", 0))),
        "can_act": can_act_on(request.user, job),  # a lab admin sees others' jobs but acts on their own only
        "can_cancel": not job.is_terminal,
        "can_restart": job.is_terminal and bool(job.slurm_job_id),
        "next_stage": services.next_stage_template(job, job.owner) if job.finished_at else None,
    }


def _log_panel(job: Job, progress: JobProgress | None, kind: str, wait: RefreshWait) -> LogPanel:
    log_kind = LOG_KINDS[kind]
    return LogPanel(
        kind=kind,
        log_kind=log_kind,
        text=getattr(progress, log_kind.field) if progress else "",
        file_name=f"slurm-{job.slurm_job_id}.{log_kind.suffix}" if job.slurm_job_id else "",
        fetched_at=progress.logs_fetched_at if progress else None,
        wait=wait,
    )


def _files_panel(progress: JobProgress | None, wait: RefreshWait) -> FilesPanel:
    entries = progress.project_files if progress else []
    files = [
        ProjectFile(
            path=entry["path"],
            is_dir=entry["is_dir"],
            size_bytes=entry["size_bytes"],
            modified=datetime.fromtimestamp(entry["modified"], tz=UTC),
        )
        for entry in entries
    ]
    return FilesPanel(files=files, listed_at=progress.files_listed_at if progress else None, wait=wait)


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = access_job(user=request.user, job_id=job_id)
    progress, log = job_selectors.job_progress(job)
    context = {
        **_status_context(request, job, progress, log),
        "pipeline": visible_pipelines(request.user).filter(pk=job.pipeline_id).first() if job.pipeline_id else None,
        "sweep_point": sweep_selectors.sweep_point_of(request.user, job_id=job.pk, pipeline_id=job.pipeline_id),
        "logs": [_log_panel(job, progress, kind, RefreshWait()) for kind in LOG_KINDS],
        "listing": _files_panel(progress, RefreshWait()),
        "energies_url": reverse("api:get_energies", kwargs={"job_id": job.pk}) + f"?columns={ENERGY_COLUMNS}",
        "usage": accounting_selectors.job_usage(job),
    }
    return render(request, "frontend/job_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def status_panel(request: HttpRequest, job_id: int) -> HttpResponse:
    """The polled status, with the state line, facts and actions swapped out of band; it stops once the job is
    settled (terminal with its results and the rest of its log in), so the last energies and files are shown.

    POST ("Ask SLURM now") first asks for a sync of the job's group, joining one already queued or running.
    """
    if request.method == "POST":
        job = access_job_to_act(user=request.user, job_id=job_id)  # asks SLURM as the owner
        services.request_member_refresh(user_id=job.owner_id, job=job)
    else:
        job = access_job(user=request.user, job_id=job_id)
    context = _status_context(request, job, *job_selectors.job_progress(job))
    response = render(request, "frontend/_job_status_poll.html", context)
    if job.is_settled:
        response["HX-Trigger"] = TERMINAL_EVENT
    return response


@login_required
@require_http_methods(["GET", "POST"])
def log_panel(request: HttpRequest, job_id: int, kind: str) -> HttpResponse:
    """A log tail; POST asks the cluster for the newest bytes and polls until they are in."""
    job = access_job(user=request.user, job_id=job_id)
    if kind not in LOG_KINDS:
        raise Http404("No such log.")
    requested = request.GET.get("requested")
    if request.method == "POST" and services.request_log_fetch(job=job, user=request.user):
        requested = str(time.time())
    progress, _ = job_selectors.job_progress(job)
    wait = _refresh_wait(requested, progress.logs_fetched_at if progress else None)
    context = {"job": job, "can_act": can_act_on(request.user, job), "log": _log_panel(job, progress, kind, wait)}
    return render(request, "frontend/_job_log.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def files_panel(request: HttpRequest, job_id: int) -> HttpResponse:
    """The project listing; POST lists the folder again and polls until the new listing is in."""
    requested = request.GET.get("requested")
    if request.method == "POST":
        services.request_file_listing(user=request.user, job_id=job_id)
        requested = str(time.time())
    job = access_job(user=request.user, job_id=job_id)
    progress, _ = job_selectors.job_progress(job)
    wait = _refresh_wait(requested, progress.files_listed_at if progress else None)
    context = {"job": job, "can_act": can_act_on(request.user, job), "listing": _files_panel(progress, wait)}
    return render(request, "frontend/_job_files.html", context)


def _download_context(job_id: int, download: StagedDownload) -> dict[str, Any]:
    context = {
        "job_id": job_id,
        "download": download,
        "relpath": download.relpath,
        "content_url": reverse("api:download_content", kwargs={"job_id": job_id, "download_id": download.pk}),
    }
    if download.state == StagedDownload.State.FAILED:
        reason = download.error_message or "Copying it to the portal failed."
        context["error"] = f"{reason} ({download.error_code}) Try again."
    elif download.state == StagedDownload.State.FETCHING and timezone.now() - download.created_at > DOWNLOAD_WAIT:
        context["gave_up"] = True  # the page stops asking; the task may still finish
        context["error"] = "Still not copied after 15 minutes: the portal's workers may be busy or down. Try again."
    return context


@login_required
@require_POST
def download_file(request: HttpRequest, job_id: int) -> HttpResponse:
    """Stage one project file on the portal; the fragment polls until it can be downloaded."""
    relpath = request.POST.get("relpath", "")
    try:
        download, _ = services.request_download(user=request.user, job_id=job_id, relpath=relpath)
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        context = {"job_id": job_id, "relpath": relpath, "error": exc.user_message}
        return render(request, "frontend/_job_download.html", context)
    return render(request, "frontend/_job_download.html", _download_context(job_id, download))


@login_required
@require_GET
def download_status(request: HttpRequest, job_id: int, download_id: int) -> HttpResponse:
    download = access_download(user=request.user, job_id=job_id, download_id=download_id)
    return render(request, "frontend/_job_download.html", _download_context(job_id, download))


def _back(job_id: int) -> HttpResponse:
    return redirect("frontend:job_detail", job_id=job_id)


@login_required
@require_POST
def cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    try:
        job, _ = services.request_cancel(user=request.user, job_id=job_id)
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        messages.error(request, exc.user_message)
        return _back(job_id)
    if job.state == JobState.CANCELLED:
        messages.success(request, "The job is cancelled.")
    else:
        messages.success(request, "Cancel requested: the state changes when SLURM confirms it.")
    return _back(job_id)


@login_required
@require_POST
def restart(request: HttpRequest, job_id: int) -> HttpResponse:
    """A continuation from the job's restart files; it opens on the new job's page."""
    title = request.POST.get("title", "")[:200]
    submit = request.POST.get("submit") == "1"
    try:
        child, _ = services.request_restart(user=request.user, job_id=job_id, title=title, submit=submit)
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        messages.error(request, exc.user_message)
        return _back(job_id)
    when = "submitted once" if submit else "ready to submit once"
    messages.success(request, f"Continuation created: {when} the restart files are copied on the cluster.")
    return _back(child.pk)


@login_required
@require_POST
def next_stage(request: HttpRequest, job_id: int) -> HttpResponse:
    """The next stage of the job's protocol, starting from a copy of its folder; it opens on the new job's page."""
    submit = request.POST.get("submit") == "1"
    template_id = request.POST.get("template_id", "")
    try:
        child, _ = services.request_next_stage(
            user=request.user,
            job_id=job_id,
            template_id=int(template_id) if template_id.isdigit() else 0,
            submit=submit,
        )
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        messages.error(request, f"{exc.user_message} ({exc.code})")
        return _back(job_id)
    when = "submitted once" if submit else "ready to submit once"
    messages.success(request, f"Next stage created: {when} this job's folder is copied on the cluster.")
    return _back(child.pk)


@login_required
@require_POST
def clone(request: HttpRequest, job_id: int) -> HttpResponse:
    """A new draft with the same values; it opens on its inputs step."""
    try:
        copy = services.clone_job(user=request.user, job_id=job_id)
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        messages.error(request, exc.user_message)
        return _back(job_id)
    messages.success(request, f"Created “{copy.title}”: upload its inputs.")
    return redirect("frontend:wizard_inputs", job_id=copy.pk)


@login_required
@require_POST
def delete(request: HttpRequest, job_id: int) -> HttpResponse:
    services.request_delete(user=request.user, job_id=job_id)
    messages.success(request, "The job is deleted; its folders on the cluster are being removed.")
    return redirect("frontend:job_list")
