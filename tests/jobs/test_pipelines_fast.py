"""Pipeline runs without a cluster: creation, what the run reads, its state, submission's routing, a failed
step stopping the run, resume, the continuous energy axis. The cluster side runs for real in
test_pipelines_on_cluster.py and test_pipeline_worker_killed_on_cluster.py."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from jobs import services
from jobs.models import InputFile, Job, JobProgress, JobState
from jobs.namd_log import LogProgress
from jobs.pipeline_steps import current_steps, pipeline_energies, pipeline_status
from jobs.services.pipelines import stop_after
from portal.errors import Conflict, Forbidden, InvalidInput, NotFound
from templates_app.builtin import load_builtin_templates
from templates_app.models import Protocol, Template
from templates_app.protocol_services import save_protocol
from templates_app.services import save_template_version
from tests.factories import UserFactory
from tests.jobs.unit_jobs import RESOURCES

pytestmark = pytest.mark.django_db

WATER = {"structure": "water.psf", "coordinates": "water.pdb", "parameters": "par_water.prm"}


def request(protocol: Protocol, profile_id: int, **changes) -> services.PipelineRequest:
    fields = {
        "protocol_id": protocol.pk,
        "cluster_id": profile_id,
        "recipe": "cpu",
        "title": "",
        "values": {**WATER, "run_steps": 100, "minimize_steps": 50, "cell_x": 30.0, "cell_y": 30.0, "cell_z": 30.0},
        "stage_values": {},
        "resources": RESOURCES,
    }
    return services.PipelineRequest(**{**fields, **changes})


@pytest.fixture
def builtin(db) -> Protocol:
    load_builtin_templates()
    return Protocol.objects.get(slug="min-equil-prod")


@pytest.fixture
def run(builtin, credential):
    return services.create_pipeline(user=credential.user, request=request(builtin, credential.profile_id))


def first_timestep(config: str) -> int:
    return int(re.search(r"^firsttimestep\s+(\d+)", config, re.MULTILINE).group(1))


def test_every_step_is_a_draft_job_in_one_folder_with_its_own_files(run) -> None:
    steps = current_steps(run)
    assert [s.stage_name for s in steps] == [
        "minimization",
        "equilibration",
        "production 1/3",
        "production 2/3",
        "production 3/3",
    ]
    assert {(s.project_dir, s.scratch_dir) for s in steps} == {(run.project_dir, run.scratch_dir)}
    assert [s.config_path for s in steps] == [
        "minimization.namd",
        "equilibration.namd",
        "production_1.namd",
        "production_2.namd",
        "production_3.namd",
    ]
    assert len({s.script_path for s in steps} | {s.metadata_path for s in steps}) == 10
    assert "production_2.namd" in steps[3].batch_script
    assert "bincoordinates     minimization.coor" in steps[1].config_text
    assert "bincoordinates     production_1.coor" in steps[3].config_text
    assert first_timestep(steps[2].config_text) == 150  # the equilibration's 50 minimization + 100 steps
    assert first_timestep(steps[4].config_text) == 350
    assert pipeline_status(steps).state == "DRAFT"


def test_the_member_values_layer_under_the_stage_overrides(builtin, credential) -> None:
    run = services.create_pipeline(
        user=credential.user,
        request=request(builtin, credential.profile_id, stage_values={3: {"run_steps": 7}}, title="layered"),
    )
    steps = current_steps(run)
    assert steps[1].values["run_steps"] == 100
    assert {s.values["run_steps"] for s in steps[2:]} == {7}
    assert steps[0].values["output_name"] == "minimization"  # the stage's own value, not the template default


def test_the_first_step_asks_for_every_steps_inputs_once_and_not_what_an_earlier_step_writes(run) -> None:
    reads = {read.path for read in services.job_reads(current_steps(run)[0])}
    assert reads == {"water.psf", "water.pdb", "par_water.prm"}
    problems = services.input_problems(current_steps(run)[0])
    assert {p["file"] for p in problems} == reads


def test_a_step_submitted_on_its_own_submits_the_whole_run(run, credential, sent_tasks) -> None:
    first = current_steps(run)[0]
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        InputFile.objects.create(job=first, name=name, state=InputFile.State.UPLOADED)
    Job.objects.filter(pk=first.pk).update(state=JobState.READY)
    services.request_submit(user=credential.user, job_id=current_steps(run)[2].pk)
    assert {s.state for s in current_steps(run)} == {JobState.SUBMITTING}
    assert [name for name, _ in sent_tasks].count("jobs.tasks.submit_pipeline_task") == 1
    _, again = services.request_submit_pipeline(user=credential.user, pipeline_id=run.pk)
    assert again == ""  # already on its way


def test_submission_waits_for_the_inputs(run, credential) -> None:
    with pytest.raises(Conflict) as refused:
        services.request_submit_pipeline(user=credential.user, pipeline_id=run.pk)
    assert refused.value.code == "INPUTS_NOT_READY"


def test_another_members_run_is_not_found_and_a_lab_admin_only_sees_it(run) -> None:
    with pytest.raises(NotFound):
        services.request_submit_pipeline(user=UserFactory(), pipeline_id=run.pk)
    admin = UserFactory(is_staff=True, is_superuser=True)
    with pytest.raises(Forbidden) as forbidden:
        services.request_cancel_pipeline(user=admin, pipeline_id=run.pk)
    assert forbidden.value.code == "PIPELINE_NOT_YOURS"


def queue_all(run) -> list[Job]:
    for number, step in enumerate(current_steps(run), start=1):
        Job.objects.filter(pk=step.pk).update(
            state=JobState.PENDING, slurm_job_id=str(9000 + number), submitted_at=timezone.now()
        )
    return current_steps(run)


def test_a_failed_step_cancels_the_steps_after_it_in_slurm_at_once(run, fake_cluster) -> None:
    steps = queue_all(run)
    Job.objects.filter(pk=steps[0].pk).update(state=JobState.COMPLETED, finished_at=timezone.now())
    Job.objects.filter(pk=steps[1].pk).update(state=JobState.FAILED)
    stop_after(Job.objects.get(pk=steps[1].pk))
    assert [argv[-3:] for argv in fake_cluster.ran("scancel")] == [("9003", "9004", "9005")]
    after = current_steps(run)
    assert [s.state for s in after] == ["COMPLETED", "FAILED", "CANCELLED", "CANCELLED", "CANCELLED"]
    assert {s.error_code for s in after[2:]} == {"STAGE_NOT_RUN"}
    assert after[2].error_message.startswith("Not run: step 2 (equilibration) ended failed.")
    status = pipeline_status(after)
    assert (status.state, status.failed_position) == ("FAILED", 2)
    stop_after(Job.objects.get(pk=steps[1].pk))  # a retried finish: nothing more to cancel
    assert len(fake_cluster.ran("scancel")) == 1


def test_resume_adds_jobs_from_the_failed_step_with_the_runs_inputs(run, credential, fake_cluster) -> None:
    steps = queue_all(run)
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        InputFile.objects.create(job=steps[0], name=name, state=InputFile.State.UPLOADED)
    with pytest.raises(Conflict) as running:
        services.resume_pipeline(user=credential.user, pipeline_id=run.pk)
    assert running.value.code == "PIPELINE_NOT_RESUMABLE"
    now = timezone.now()
    Job.objects.filter(pk=steps[0].pk).update(state=JobState.COMPLETED, finished_at=now)
    Job.objects.filter(pk=steps[1].pk).update(state=JobState.FAILED, finished_at=now)
    Job.objects.filter(pk__in=[s.pk for s in steps[2:]]).update(state=JobState.CANCELLED, finished_at=now)

    services.resume_pipeline(user=credential.user, pipeline_id=run.pk, stage_values={2: {"run_steps": 40}})
    resumed = current_steps(run)
    assert resumed[0].pk == steps[0].pk
    assert all(new.pk not in {old.pk for old in steps} for new in resumed[1:])
    assert resumed[1].state == JobState.READY  # the run's inputs handed over, nothing to upload again
    assert {i.name for i in resumed[1].inputs.all()} == {"water.psf", "water.pdb", "par_water.prm"}
    assert resumed[1].values["run_steps"] == 40
    assert first_timestep(resumed[2].config_text) == 90  # planned from the new values
    assert resumed[1].template_version_id == steps[1].template_version_id  # versions stay pinned
    assert pipeline_status(resumed).state == "READY"


def test_an_unknown_stage_layout_is_refused_with_its_code(builtin, credential) -> None:
    stage = builtin.stages.get(position=3)
    stage.continuation = "charmm_gui"
    stage.save()
    with pytest.raises(InvalidInput) as refused:
        services.create_pipeline(user=credential.user, request=request(builtin, credential.profile_id))
    assert refused.value.code == "PROTOCOL_INVALID"


def feed(job: Job, lines: list[str]) -> None:
    log = LogProgress()
    log.feed("\n".join(lines).encode() + b"\n")
    JobProgress.objects.update_or_create(job=job, defaults={"log_state": log.to_state()})


def energy(step: int, total: float) -> str:
    return f"ENERGY: {step:7d} 0 0 0 0 0 0 0 0 0 {total} 0"  # TOTAL is the 11th column


COLUMNS = ("TS", "BOND", "ANGLE", "DIHED", "IMPRP", "ELECT", "VDW", "BOUNDARY", "MISC", "KINETIC", "TOTAL", "TEMP")
TITLE = "ETITLE:" + "".join(f" {column:>14}" for column in COLUMNS)


def test_the_energy_axis_continues_across_steps(run) -> None:
    steps = current_steps(run)
    feed(steps[0], [TITLE, energy(0, -1.0), energy(50, -2.0)])  # minimization: 0..50
    feed(steps[1], [TITLE, energy(0, -3.0), energy(150, -4.0)])  # starts again at 0: moved after it
    feed(steps[2], [TITLE, energy(150, -5.0), energy(250, -6.0)])  # firsttimestep 150: where it is
    energies = pipeline_energies(run, ["TOTAL", "NOPE"])
    assert energies["series"]["TOTAL"] == [
        (0, -1.0),
        (50, -2.0),
        (50, -3.0),
        (200, -4.0),
        (200, -5.0),
        (300, -6.0),
    ]
    assert "NOPE" not in energies["series"]
    assert [start["step"] for start in energies["starts"][:3]] == [0, 50, 200]


def test_values_no_stage_takes_are_refused_with_their_names(builtin, credential) -> None:
    with pytest.raises(InvalidInput) as refused:
        services.create_pipeline(
            user=credential.user, request=request(builtin, credential.profile_id, values={**WATER, "tempreature": 1})
        )
    assert (refused.value.code, refused.value.details["names"]) == ("VALUE_UNKNOWN_VARIABLE", ["tempreature"])
    with pytest.raises(InvalidInput) as refused:
        services.create_pipeline(
            user=credential.user, request=request(builtin, credential.profile_id, stage_values={1: {"cell_x": 9.0}})
        )
    assert refused.value.details["names"] == ["cell_x (stage 1)"]  # the minimization has no cell
    with pytest.raises(InvalidInput) as refused:
        services.create_pipeline(
            user=credential.user, request=request(builtin, credential.profile_id, stage_values={9: {}})
        )
    assert refused.value.code == "STAGE_UNKNOWN"


def fail_second_step(run) -> list[Job]:
    steps = queue_all(run)
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        InputFile.objects.create(job=steps[0], name=name, state=InputFile.State.UPLOADED)
    now = timezone.now()
    Job.objects.filter(pk=steps[0].pk).update(state=JobState.COMPLETED, finished_at=now)
    Job.objects.filter(pk=steps[1].pk).update(state=JobState.FAILED, finished_at=now)
    Job.objects.filter(pk__in=[s.pk for s in steps[2:]]).update(state=JobState.CANCELLED, finished_at=now)
    return steps


def test_an_admins_edit_of_the_stages_values_keeps_a_run_resumable_with_its_versions(run, credential) -> None:
    steps = fail_second_step(run)
    stages = list(run.protocol.stages.all())
    stages[2].values = {**stages[2].values, "run_steps": 70}
    save_protocol(protocol=run.protocol, stages=stages)
    production = Template.objects.get(slug="production-restart")
    latest = production.versions.order_by("-number").first()
    save_template_version(template=production, body=latest.body + "\n# v2\n", variables=latest.variables, user=None)

    services.resume_pipeline(user=credential.user, pipeline_id=run.pk)

    resumed = current_steps(run)
    assert [step.template_version_id for step in resumed] == [step.template_version_id for step in steps]
    assert resumed[2].values["run_steps"] == 70  # the stage's values as they are now


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda stages: stages[2].__setattr__("repeat", 4), id="more production segments"),
        pytest.param(lambda stages: stages.pop(), id="a stage removed"),
        pytest.param(
            lambda stages: stages[1].__setattr__("template", Template.objects.get(slug="production-restart")),
            id="a stage runs another template",
        ),
    ],
)
def test_a_run_whose_protocol_changed_shape_is_not_resumed_but_cloned(run, credential, change) -> None:
    steps = fail_second_step(run)
    stages = list(run.protocol.stages.all())
    change(stages)
    stages[1].continuation = "restart"
    save_protocol(protocol=run.protocol, stages=stages)

    with pytest.raises(Conflict) as refused:
        services.resume_pipeline(user=credential.user, pipeline_id=run.pk)

    assert refused.value.code == "PROTOCOL_CHANGED"
    assert [step.pk for step in current_steps(run)] == [step.pk for step in steps]  # nothing made
