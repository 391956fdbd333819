"""Sweeps made by the services without cluster contact, their points put in states as the sync would leave them,
their logs read from recorded NAMD logs, and the sweep wizard's form as a browser sends it."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from django.utils import timezone

from jobs import services
from jobs.models import InputFile, Job, JobProgress, JobState, Sweep, SweepPoint
from jobs.namd_log import LogProgress
from jobs.sweep_points import SweepAxis
from templates_app.models import Protocol, Template
from tests.frontend.pipeline_runs import BUILTIN, RUN_VALUES
from tests.frontend.test_pipeline_pages import filled as run_form
from tests.frontend.test_wizard import filled as job_form
from tests.jobs.unit_jobs import FIXTURES, RESOURCES, VALUES

TEMPLATE = "npt-equilibration"
GRID = (SweepAxis("temperature", (300.0, 310.0, 320.0)), SweepAxis("cutoff", (10.0, 12.0)))
SLURM_IDS = itertools.count(9000)
INPUTS = {"water.psf": "structure", "water.pdb": "coordinates", "par_water.prm": "parameters"}  # VALUES reads them


def new_sweep(user, profile, *, axes: tuple[SweepAxis, ...] = GRID, **fields: Any) -> Sweep:
    """A template sweep made by `create_sweep` (every point a DRAFT job)."""
    request = services.SweepRequest(
        template_id=Template.objects.get(slug=fields.pop("template", TEMPLATE)).pk,
        cluster_id=profile.pk,
        recipe="cpu",
        resources=RESOURCES,
        title=fields.pop("title", "water grid"),
        axes=axes,
        values={**VALUES, **fields.pop("values", {})},
        **fields,
    )
    return services.create_sweep(user=user, request=request)


def new_protocol_sweep(user, profile, *, axes: tuple[SweepAxis, ...], **fields: Any) -> Sweep:
    """A sweep of the built-in protocol (every point a DRAFT pipeline run)."""
    request = services.SweepRequest(
        protocol_id=Protocol.objects.get(slug=BUILTIN).pk,
        cluster_id=profile.pk,
        recipe="cpu",
        resources=RESOURCES,
        title=fields.pop("title", "water runs"),
        axes=axes,
        values=RUN_VALUES,
        **fields,
    )
    return services.create_sweep(user=user, request=request)


def point_jobs(sweep: Sweep) -> list[Job]:
    """Each template point's job, in index order."""
    return [point.job for point in SweepPoint.objects.filter(sweep=sweep).select_related("job").order_by("index")]


def set_points(sweep: Sweep, states: list[JobState]) -> list[Job]:
    """The template points' jobs in these states as the sync leaves them (sent ones with a SLURM id, ended ones
    with their results back)."""
    now = timezone.now()
    for job, state in zip(point_jobs(sweep), states, strict=True):
        changes: dict[str, Any] = {"state": state}
        if state not in (JobState.DRAFT, JobState.UPLOADING, JobState.READY):
            changes |= {"slurm_job_id": str(next(SLURM_IDS)), "submitted_at": now - timedelta(minutes=30)}
        if state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED):
            changes |= {"ended_at": now - timedelta(minutes=5), "finished_at": now}
        if state == JobState.FAILED:
            changes |= {"error_code": "NAMD_FAILED", "error_message": "NAMD stopped with an error."}
        Job.objects.filter(pk=job.pk).update(**changes)
    return point_jobs(sweep)


def logged(job: Job, log_name: str = "namd2_npt_pme.log", *, temperature_shift: float = 0.0) -> None:
    """The job's log as the sync reads it: a recorded NAMD log fed to the portal's reader (its TEMP shifted)."""
    log = LogProgress()
    log.feed((FIXTURES / "logs" / log_name).read_bytes())
    state = log.to_state()
    titles = state["energy_titles"]
    for row in state["energies"]:
        row[titles.index("TEMP")] += temperature_shift
    JobProgress.objects.update_or_create(job=job, defaults={"log_state": state})


def inputs_in(job: Job) -> Job:
    """The job's inputs uploaded and on the cluster: READY, as the copy tasks leave it."""
    for name, role in INPUTS.items():
        InputFile.objects.create(
            job=job, name=name, role=role, size_bytes=10, sha256="0" * 64, state=InputFile.State.UPLOADED
        )
    Job.objects.filter(pk=job.pk).update(state=JobState.READY)
    return Job.objects.get(pk=job.pk)


def sweep_form(profile, **changes: str) -> dict[str, str]:
    """The template sweep form as a browser sends it: the job wizard's fields, a 3 x 2 grid, 2 at a time."""
    data = {
        **job_form(profile),
        "title": "water grid",
        "mode": "grid",
        "axis_rows": "2",
        "axis0_name": "temperature",
        "axis0_values": "300, 310, 320",
        "axis1_name": "cutoff",
        "axis1_values": "10, 12",
        "replicas": "",
        "base_seed": "",
        "max_running": "2",
    }
    return {**data, **changes}


def protocol_sweep_form(profile, **changes: str) -> dict[str, str]:
    """The protocol sweep form as a browser sends it: the protocol wizard's fields, two temperatures."""
    data = {**run_form(profile), "mode": "grid", "axis_rows": "1", "axis0_name": "temperature"}
    return {**data, "axis0_values": "300, 310", **changes}
