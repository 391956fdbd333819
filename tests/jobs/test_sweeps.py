"""Sweeps (jobs.services.sweeps, jobs.sweep_selectors) on the real database and the fake member session:
creation, refusals, the inputs copied once into every point, the gate, cancel, retry, rows, CSV and plot."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters.models import ClusterCredential
from jobs import services, sweep_selectors
from jobs.models import InputFile, Job, JobEvent, JobProgress, JobState, Sweep, SweepPoint
from jobs.namd_log import LogProgress
from jobs.services.readiness import refresh_readiness
from jobs.services.sweeps import SweepRequest, advance_gate, point_settled
from jobs.sweep_points import SweepAxis
from portal.errors import Conflict, InvalidInput, NotFound, TemplateError
from templates_app.batch_script import Resources
from templates_app.builtin import BUILTIN_PROTOCOL_SLUG, SEED, body
from templates_app.models import Protocol, Template
from templates_app.services import save_template_version
from tests.factories import WATER_RESOURCES, WATER_VALUES, builtin_version

pytestmark = pytest.mark.django_db

NAMD = Path(__file__).resolve().parents[1] / "fixtures" / "namd"
WATER_FILES = {"water.psf": "structure", "water.pdb": "coordinates", "par_water.prm": "parameters"}
GRID = (SweepAxis("temperature", (300.0, 310.0, 320.0)), SweepAxis("cutoff", (10.0, 12.0)))


def sweep_request(credential: ClusterCredential, **fields: Any) -> SweepRequest:
    template_id = fields.pop("template_id", None) or builtin_version("npt-equilibration").template_id
    return SweepRequest(
        cluster_id=credential.profile_id,
        recipe="cpu",
        resources=Resources(**WATER_RESOURCES),
        template_id=template_id,
        title=fields.pop("title", "water grid"),
        axes=fields.pop("axes", GRID),
        values=fields.pop("values", WATER_VALUES),
        **fields,
    )


def make_sweep(credential: ClusterCredential, **fields: Any) -> Sweep:
    return services.create_sweep(user=credential.user, request=sweep_request(credential, **fields))


def point_jobs(sweep: Sweep) -> list[Job]:
    return [point.job for point in SweepPoint.objects.filter(sweep=sweep).select_related("job").order_by("index")]


def upload_to_first_point(sweep: Sweep, fake_cluster: Any) -> Job:
    """The member's three water files, uploaded to the first point's job and on the cluster: that job READY."""
    holder = point_jobs(sweep)[0]
    for name, role in WATER_FILES.items():
        data = (NAMD / name).read_bytes()
        fake_cluster.put(f"{holder.project_dir}/{name}", data)
        InputFile.objects.create(
            job=holder,
            name=name,
            role=role,
            size_bytes=len(data),
            sha256="0" * 64,
            state=InputFile.State.UPLOADED,
            bytes_uploaded=len(data),
            uploaded_at=timezone.now(),
        )
    Job.objects.filter(pk=holder.pk).update(state=JobState.UPLOADING)
    refresh_readiness(Job.objects.get(pk=holder.pk))
    return Job.objects.get(pk=holder.pk)


def submitted_sweep(credential: ClusterCredential, fake_cluster: Any, **fields: Any) -> Sweep:
    """A sweep whose inputs are in every point, submitted by its member."""
    sweep = make_sweep(credential, **fields)
    upload_to_first_point(sweep, fake_cluster)
    services.advance_sweep(sweep_id=sweep.pk)
    services.request_submit_sweep(user=credential.user, sweep_id=sweep.pk)
    return sweep


def states(sweep: Sweep) -> list[str]:
    return [job.state for job in point_jobs(sweep)]


def sent_names(sent_tasks: list[tuple[str, tuple[Any, ...]]], name: str) -> list[tuple[Any, ...]]:
    return [args for task, args in sent_tasks if task == name]


# ------------------------------------------------------------------ creation


def test_a_grid_sweep_makes_one_rendered_draft_job_per_point(credential) -> None:
    sweep = make_sweep(credential, max_running=2)
    points = list(SweepPoint.objects.filter(sweep=sweep).select_related("job").order_by("index"))
    assert [point.values for point in points] == [
        {"temperature": t, "cutoff": c} for t in (300.0, 310.0, 320.0) for c in (10.0, 12.0)
    ]
    assert (sweep.mode, sweep.max_running, sweep.axes[0]["name"]) == ("grid", 2, "temperature")
    for point in points:
        job = point.job
        assert (job.state, job.owner_id, job.template_version_id) == (
            JobState.DRAFT,
            credential.user_id,
            sweep.template_version_id,
        )
        assert job.values["temperature"] == point.values["temperature"]
        assert job.values["structure"] == "water.psf"
        assert f"cutoff             {point.values['cutoff']}" in job.config_text
        assert f"np-{job.uuid.hex[:12]}-" in job.batch_script
        assert job.title.startswith(f"water grid #{point.index} (temperature=")
    assert len({job.project_dir for job in (point.job for point in points)}) == 6
    events = JobEvent.objects.filter(job__sweep_point__sweep=sweep, kind="CREATED")
    assert sorted(events.values_list("detail", flat=True)) == sorted(f"point {i} of sweep {sweep.pk}" for i in range(6))


def test_creating_many_points_costs_the_queries_of_few(credential) -> None:
    builtin_version("npt-equilibration")  # loaded before counting
    counts = []
    for temperatures in ((300.0, 310.0), tuple(300.0 + t for t in range(12))):
        with CaptureQueriesContext(connection) as queries:
            make_sweep(credential, axes=(SweepAxis("temperature", temperatures),))
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_a_point_that_does_not_render_is_named_and_nothing_is_created(credential) -> None:
    with pytest.raises(TemplateError) as caught:
        make_sweep(credential, axes=(SweepAxis("temperature", (300.0, 5000.0)),))
    assert caught.value.details["point"] == 1
    assert caught.value.details["point_values"] == {"temperature": 5000.0}
    assert caught.value.user_message.startswith("Point 1 (temperature=5000.0): ")
    assert Sweep.objects.count() == 0
    assert Job.objects.count() == 0


def test_too_many_points_and_an_unknown_axis_are_refused_before_rendering(credential) -> None:
    with pytest.raises(InvalidInput) as caught:
        make_sweep(credential, axes=(SweepAxis("seed", tuple(range(1, 502))),))
    assert caught.value.code == "SWEEP_TOO_MANY_POINTS"
    with pytest.raises(InvalidInput) as unknown:
        make_sweep(credential, axes=(SweepAxis("pressure", (1.0,)),))
    assert unknown.value.code == "SWEEP_AXIS_UNKNOWN"
    assert "temperature" in unknown.value.details["variables"]


def test_replicas_put_their_seeds_in_each_config(credential) -> None:
    sweep = make_sweep(credential, mode="replicas", axes=(), replicas=3, base_seed=42)
    seeds = sweep.axes[0]["values"]
    assert (sweep.axes[0]["base_seed"], len(set(seeds))) == (42, 3)
    for job, seed in zip(point_jobs(sweep), seeds, strict=True):
        assert job.values["seed"] == seed
        assert re.search(rf"^seed +{seed}$", job.config_text, re.M)


def test_replicas_of_a_template_without_a_seed_are_refused(credential) -> None:
    template = Template.objects.create(name="No seed", slug="no-seed", category=Template.Category.MINIMIZATION)
    version = builtin_version("vacuum-minimization")
    seedless = re.sub(r"\{% if seed %\}.*\n\{% endif %\}", "", body("vacuum-minimization"))
    save_template_version(
        template=template,
        body=seedless,
        variables=[v for v in version.variables if v["name"] != SEED["name"]],
        user=None,
    )
    with pytest.raises(InvalidInput) as caught:
        make_sweep(credential, template_id=template.pk, mode="replicas", axes=(), replicas=3, base_seed=1)
    assert caught.value.code == "SWEEP_NO_SEED_VARIABLE"


def test_a_sweep_names_a_template_or_a_protocol(credential) -> None:
    with pytest.raises(InvalidInput) as caught:
        services.create_sweep(user=credential.user, request=replace(sweep_request(credential), protocol_id=1))
    assert caught.value.code == "SWEEP_KIND_INVALID"


# ------------------------------------------------------------------ inputs once, then the gate


def test_the_first_points_inputs_are_copied_into_every_point_in_one_exec(credential, fake_cluster, sent_tasks) -> None:
    sweep = make_sweep(credential)
    holder = upload_to_first_point(sweep, fake_cluster)
    assert holder.state == JobState.READY
    assert sent_names(sent_tasks, "jobs.tasks.advance_sweep_task") == [(sweep.pk,)]  # READY orders the turn
    assert states(sweep)[1:] == [JobState.DRAFT] * 5
    fake_cluster.argvs.clear()

    services.advance_sweep(sweep_id=sweep.pk, task_id="turn-1")

    (copy_exec,) = [argvs for argvs in fake_cluster.sequences if argvs[0][0] == "rsync"]
    others = point_jobs(sweep)[1:]
    assert [argv[-1] for argv in copy_exec] == [f"{job.project_dir}/" for job in others]
    assert copy_exec[0][:4] == ("rsync", "-a", "--relative", "--")
    for job in others:
        assert fake_cluster.file(f"{job.project_dir}/water.psf") == (NAMD / "water.psf").read_bytes()
        copies = {f.name: (f.state, f.role, f.copied_from) for f in job.inputs.all()}
        assert copies == {
            name: (InputFile.State.UPLOADED, role, f"{holder.project_dir}/{name}") for name, role in WATER_FILES.items()
        }
    assert states(sweep) == [JobState.READY] * 6
    assert not sent_names(sent_tasks, "jobs.tasks.submit_job_task")  # nobody asked to submit yet


def test_the_gate_keeps_at_most_max_running_points_active_and_starts_the_next_when_one_settles(
    credential, fake_cluster, sent_tasks
) -> None:
    sweep = submitted_sweep(credential, fake_cluster, max_running=2)

    jobs = point_jobs(sweep)
    assert [job.state for job in jobs] == [JobState.SUBMITTING] * 2 + [JobState.READY] * 4
    assert [job.submit_when_ready for job in jobs] == [False] * 2 + [True] * 4
    assert sent_names(sent_tasks, "jobs.tasks.submit_job_task") == [
        (jobs[0].pk, credential.user_id),
        (jobs[1].pk, credential.user_id),
    ]
    rows = sweep_selectors.sweep_rows(sweep)
    assert (sweep_selectors.sweep_summary(rows).waiting, [row.is_waiting for row in rows][:3]) == (
        4,
        [False, False, True],
    )

    Job.objects.filter(pk=jobs[0].pk).update(state=JobState.PENDING, slurm_job_id="101")
    point_settled(jobs[0])  # a point still queued: nothing more
    assert states(sweep)[2] == JobState.READY
    Job.objects.filter(pk=jobs[0].pk).update(state=JobState.COMPLETED, finished_at=timezone.now())
    point_settled(Job.objects.get(pk=jobs[0].pk))
    assert states(sweep) == [JobState.COMPLETED, JobState.SUBMITTING, JobState.SUBMITTING] + [JobState.READY] * 3
    assert advance_gate(sweep_id=sweep.pk) == []  # a second round finds no room


def test_submitting_before_the_inputs_are_in_is_refused_with_what_is_missing(credential, sent_tasks) -> None:
    sweep = make_sweep(credential)
    with pytest.raises(Conflict) as caught:
        services.request_submit_sweep(user=credential.user, sweep_id=sweep.pk)
    assert caught.value.code == "INPUTS_NOT_READY"
    assert {problem["file"] for problem in caught.value.details["problems"]} == set(WATER_FILES)
    assert caught.value.details["job_id"] == point_jobs(sweep)[0].pk


def test_a_sweep_created_to_submit_starts_its_points_once_the_inputs_are_copied(
    credential, fake_cluster, sent_tasks
) -> None:
    sweep = make_sweep(credential, submit=True)
    upload_to_first_point(sweep, fake_cluster)
    assert states(sweep)[0] == JobState.READY  # a sweep's point never starts itself: the turn does
    assert not sent_names(sent_tasks, "jobs.tasks.submit_job_task")
    services.advance_sweep(sweep_id=sweep.pk)
    assert states(sweep) == [JobState.SUBMITTING] * 6
    assert len(sent_names(sent_tasks, "jobs.tasks.submit_job_task")) == 6


def test_a_point_submitted_on_its_own_is_refused_and_named_so_the_gate_holds(
    credential, fake_cluster, sent_tasks
) -> None:
    sweep = make_sweep(credential, max_running=2)
    first = upload_to_first_point(sweep, fake_cluster)
    services.advance_sweep(sweep_id=sweep.pk)
    ready = point_jobs(sweep)[3]
    assert ready.state == JobState.READY

    for job in (first, ready):
        with pytest.raises(Conflict) as caught:
            services.request_submit(user=credential.user, job_id=job.pk)
        assert caught.value.code == "SWEEP_POINT_SUBMIT"
        assert caught.value.details == {"sweep_id": sweep.pk}
    assert not sent_names(sent_tasks, "jobs.tasks.submit_job_task")

    request = replace(
        sweep_request(credential, axes=(SweepAxis("temperature", (300.0, 310.0)),)),
        template_id=None,
        protocol_id=Protocol.objects.get(slug=BUILTIN_PROTOCOL_SLUG).pk,
    )
    protocol_sweep = services.create_sweep(user=credential.user, request=request)
    run = SweepPoint.objects.filter(sweep=protocol_sweep).order_by("index").first().pipeline
    with pytest.raises(Conflict) as caught:
        services.request_submit_pipeline(user=credential.user, pipeline_id=run.pk)
    assert caught.value.code == "SWEEP_POINT_SUBMIT"


# ------------------------------------------------------------------ cancel and retry


def test_cancel_ends_the_unsent_points_at_once_and_scancels_the_queued_ones_in_one_task(
    credential, fake_cluster, sent_tasks
) -> None:
    sweep = submitted_sweep(credential, fake_cluster, max_running=2)
    jobs = point_jobs(sweep)
    for job, slurm_id in zip(jobs[:2], ("201", "202"), strict=True):
        Job.objects.filter(pk=job.pk).update(state=JobState.PENDING, slurm_job_id=slurm_id)

    _, task_id = services.request_cancel_sweep(user=credential.user, sweep_id=sweep.pk)

    assert task_id
    assert sent_names(sent_tasks, "jobs.tasks.cancel_jobs_task") == [([jobs[0].pk, jobs[1].pk], credential.user_id)]
    assert states(sweep) == [JobState.PENDING] * 2 + [JobState.CANCELLED] * 4
    assert all(job.cancel_requested_at is not None for job in point_jobs(sweep)[:2])
    assert JobEvent.objects.filter(job_id=jobs[0].pk, kind="CANCEL_REQUESTED").count() == 1
    Job.objects.filter(pk=jobs[0].pk).update(state=JobState.CANCELLED, finished_at=timezone.now())
    point_settled(jobs[0])
    assert states(sweep)[2:] == [JobState.CANCELLED] * 4  # the gate starts nothing after a cancel
    with pytest.raises(Conflict) as caught:
        services.request_submit_sweep(user=credential.user, sweep_id=sweep.pk)
    assert caught.value.code == "SWEEP_CANCELLED"


def test_retry_gives_the_failed_points_new_jobs_with_the_failed_jobs_inputs(
    credential, fake_cluster, sent_tasks
) -> None:
    sweep = make_sweep(credential, axes=(SweepAxis("temperature", (300.0, 310.0, 320.0)),))
    upload_to_first_point(sweep, fake_cluster)
    services.advance_sweep(sweep_id=sweep.pk)
    first, failed, running = point_jobs(sweep)
    now = timezone.now()
    Job.objects.filter(pk=first.pk).update(state=JobState.COMPLETED, slurm_job_id="301", finished_at=now)
    Job.objects.filter(pk=failed.pk).update(state=JobState.FAILED, slurm_job_id="302", finished_at=now)
    Job.objects.filter(pk=running.pk).update(state=JobState.RUNNING, slurm_job_id="303")

    services.retry_failed_points(user=credential.user, sweep_id=sweep.pk)

    again = SweepPoint.objects.get(sweep=sweep, index=1).job
    assert (again.parent_id, again.state, again.submit_when_ready) == (failed.pk, JobState.DRAFT, True)
    assert (again.values, again.config_text) == (failed.values, failed.config_text)
    assert again.project_dir != failed.project_dir
    assert [job.pk for job in point_jobs(sweep)] == [first.pk, again.pk, running.pk]
    services.advance_sweep(sweep_id=sweep.pk)
    assert {f.copied_from for f in again.inputs.all()} == {f"{failed.project_dir}/{name}" for name in WATER_FILES}
    assert Job.objects.get(pk=again.pk).state == JobState.SUBMITTING  # no limit: started once ready
    with pytest.raises(Conflict) as caught:
        services.retry_failed_points(user=credential.user, sweep_id=sweep.pk)
    assert caught.value.code == "SWEEP_NOTHING_TO_RETRY"


def test_another_member_can_neither_submit_nor_cancel_nor_retry(credential, other_member) -> None:
    sweep = make_sweep(credential)
    for action in (services.request_submit_sweep, services.request_cancel_sweep, services.retry_failed_points):
        with pytest.raises(NotFound) as caught:
            action(user=other_member, sweep_id=sweep.pk)
        assert caught.value.code == "SWEEP_NOT_FOUND"


# ------------------------------------------------------------------ rows, CSV, plot


def log_state(temperature_shift: float = 0.0) -> dict[str, Any]:
    """The stand-in engine's real NAMD 2 NPT log, read as the sync reads it (its last ENERGY line at step 400)."""
    log = LogProgress()
    log.feed((NAMD / "logs" / "namd2_npt_pme.log").read_bytes())
    state = log.to_state()
    titles = state["energy_titles"]
    for row in state["energies"]:
        row[titles.index("TEMP")] += temperature_shift
    return state


def test_rows_carry_each_points_state_progress_and_final_energies(credential) -> None:
    sweep = make_sweep(credential)
    jobs = point_jobs(sweep)
    Job.objects.filter(pk=jobs[0].pk).update(state=JobState.COMPLETED, error_code="")
    JobProgress.objects.create(job=jobs[0], log_state=log_state())
    JobProgress.objects.create(job=jobs[1], log_state={})
    rows = sweep_selectors.sweep_rows(sweep)
    assert [row.index for row in rows] == list(range(6))
    first = rows[0]
    assert (first.state, first.job_id, first.pipeline_id, first.last_step) == ("COMPLETED", jobs[0].pk, None, 400)
    assert first.energies == {"TOTAL": 12.1928, "POTENTIAL": 10.1302, "KINETIC": 2.0626, "TEMP": 345.9728}
    assert first.ns_per_day == LogProgress.from_state(log_state()).ns_per_day
    assert first.values == {"temperature": 300.0, "cutoff": 10.0}
    assert (rows[1].last_step, rows[1].energies["TOTAL"], rows[2].state) == (None, None, "DRAFT")


def test_rows_cost_the_queries_of_a_few_points_whatever_their_number(credential) -> None:
    counts = []
    for temperatures in ((300.0, 310.0), tuple(300.0 + t for t in range(40))):
        sweep = make_sweep(credential, axes=(SweepAxis("temperature", temperatures),))
        for job in point_jobs(sweep):
            JobProgress.objects.create(job=job, log_state=log_state())
        with CaptureQueriesContext(connection) as queries:
            rows = sweep_selectors.sweep_rows(sweep)
        assert len(rows) == len(temperatures)
        counts.append(len(queries))
    assert counts == [1, 1]


def test_the_csv_has_a_column_per_swept_variable(credential) -> None:
    sweep = make_sweep(credential)
    JobProgress.objects.create(job=point_jobs(sweep)[0], log_state=log_state())
    lines = sweep_selectors.sweep_csv(sweep, sweep_selectors.sweep_rows(sweep)).splitlines()
    assert lines[0] == (
        "index,temperature,cutoff,state,stage,last_step,ns_per_day,final_total,final_potential,final_kinetic,"
        "final_temp,error_code,job_id,pipeline_id"
    )
    first_job = point_jobs(sweep)[0]
    ns_per_day = LogProgress.from_state(log_state()).ns_per_day
    assert lines[1] == f"0,300.0,10.0,DRAFT,,400,{ns_per_day},12.1928,10.1302,2.0626,345.9728,,{first_job.pk},"
    assert lines[2] == f"1,300.0,12.0,DRAFT,,,,,,,,,{point_jobs(sweep)[1].pk},"
    assert len(lines) == 7


def test_a_figure_against_a_swept_variable_is_one_series_per_other_value(credential) -> None:
    sweep = make_sweep(credential)
    for shift, job in enumerate(point_jobs(sweep)):
        JobProgress.objects.create(job=job, log_state=log_state(temperature_shift=float(shift)))
    rows = sweep_selectors.sweep_rows(sweep)
    plot = sweep_selectors.sweep_plot(sweep, rows, figure="temperature")
    assert (plot.axis, plot.unit) == ("temperature", "K")
    assert [series.label for series in plot.series] == ["cutoff=10.0", "cutoff=12.0"]
    assert plot.series[0].points == [(300.0, 345.9728), (310.0, 347.9728), (320.0, 349.9728)]
    by_cutoff = sweep_selectors.sweep_plot(sweep, rows, figure="last_step", axis="cutoff")
    assert by_cutoff.series[0].label == "temperature=300.0"
    assert by_cutoff.series[0].points == [(10.0, 400.0), (12.0, 400.0)]
    mean = sweep_selectors.sweep_plot(sweep, rows, figure="mean_temperature")
    temps = [value for _, value in LogProgress.from_state(log_state()).energy_series("TEMP")]
    assert mean.series[0].points[0] == (300.0, pytest.approx(sum(temps) / len(temps)))
    for figure, axis, code in (("speed", None, "SWEEP_FIGURE_UNKNOWN"), ("last_step", "seed", "SWEEP_AXIS_UNKNOWN")):
        with pytest.raises(InvalidInput) as caught:
            sweep_selectors.sweep_plot(sweep, rows, figure=figure, axis=axis)
        assert caught.value.code == code


# ------------------------------------------------------------------ a protocol sweep: each point one pipeline run


def test_a_protocol_sweep_runs_one_pipeline_per_point_through_the_same_gate(
    credential, fake_cluster, sent_tasks
) -> None:
    builtin_version("npt-equilibration")  # loads the built-in protocol too
    protocol = Protocol.objects.get(slug=BUILTIN_PROTOCOL_SLUG)
    request = replace(
        sweep_request(credential, axes=(SweepAxis("temperature", (300.0, 310.0)),), max_running=1),
        template_id=None,
        protocol_id=protocol.pk,
    )
    sweep = services.create_sweep(user=credential.user, request=request)
    points = list(SweepPoint.objects.filter(sweep=sweep).select_related("pipeline").order_by("index"))
    assert [point.job_id for point in points] == [None, None]
    steps = [list(point.pipeline.steps.order_by("position")) for point in points]
    assert [len(run) for run in steps] == [5, 5]
    assert {step.values["temperature"] for step in steps[1]} == {310.0}
    assert sweep_selectors.inputs_job_id(sweep) == steps[0][0].pk

    holder = steps[0][0]
    for name, role in WATER_FILES.items():
        fake_cluster.put(f"{holder.project_dir}/{name}", (NAMD / name).read_bytes())
        InputFile.objects.create(job=holder, name=name, role=role, size_bytes=1, sha256="0" * 64, state="UPLOADED")
    Job.objects.filter(pk=holder.pk).update(state=JobState.UPLOADING)
    refresh_readiness(Job.objects.get(pk=holder.pk))
    services.advance_sweep(sweep_id=sweep.pk)
    second = Job.objects.get(pk=steps[1][0].pk)
    assert (second.state, sorted(second.inputs.values_list("name", flat=True))) == (JobState.READY, sorted(WATER_FILES))

    services.request_submit_sweep(user=credential.user, sweep_id=sweep.pk)

    assert sent_names(sent_tasks, "jobs.tasks.submit_pipeline_task") == [(points[0].pipeline_id, credential.user_id)]
    assert set(points[0].pipeline.steps.values_list("state", flat=True)) == {JobState.SUBMITTING}
    with CaptureQueriesContext(connection) as queries:
        rows = sweep_selectors.sweep_rows(sweep)
    assert len(queries) == 2
    assert [(row.state, row.stage, row.steps_total, row.is_waiting) for row in rows] == [
        ("RUNNING", "minimization", 5, False),
        ("READY", "minimization", 5, True),
    ]
    assert [row.pipeline_id for row in rows] == [point.pipeline_id for point in points]
