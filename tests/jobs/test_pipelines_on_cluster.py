"""Pipeline runs on the local SLURM cluster through the API and a real Celery worker.

The built-in protocol (minimization -> NPT equilibration -> production x 3) on a water box: every step
queued at once as one afterok chain (one `bash -s` exec), its equilibration failing on a bad restraints
file, the steps after it cancelled in SLURM at once and shown as not run, the member uploading a fixed
file and resuming from the failed step, the run completing with one continuous energy axis. A second run
whose first step hits TIMEOUT continues it in the chain: the next step is relinked behind the
continuation and starts from where the planned step count ends. An imported CHARMM-GUI Solution Builder
protocol runs step4 then step5 twice (each segment reading the one before through `inputname`), from the
member's own archive uploaded once. An input deleted from the run's folder on the cluster stops the submission
before anything is queued (STAGING_FAILED, saying so), and the run queues once it is uploaded again.
"""

from __future__ import annotations

import re
import shutil
import uuid
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from clusters.models import LaunchRecipe, RemoteCommandRecord
from jobs.models import Job, JobEvent
from templates_app import batch_script
from templates_app.charmm_gui import family_protocol, import_charmm_gui
from templates_app.models import Protocol, ProtocolStage, Template
from templates_app.protocol_services import save_protocol
from tests.jobs.cluster_jobs import (
    CELL,
    QUICK,
    RECIPE,
    WATER,
    job,
    register,
    upload_inputs,
    wait_for,
    wait_for_state,
    wait_until_finished,
)
from tests.jobs.test_charmm_gui_on_cluster import DOWNLOAD as CHARMM_GUI
from tests.jobs.test_charmm_gui_on_cluster import FAST_RECIPE, member_archive

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_pipe"
BAD_RESTRAINTS = b"bond 0 99 10.0 1.0\n"  # atom 99 of a 3-atom box: NAMD's BAD ATOM ID IN EXTRA BONDS FILE
GOOD_RESTRAINTS = b"bond 0 1 10.0 1.0\n"
RUN_STEPS = 100


@pytest.fixture
def setup(celery_worker):
    return register((MEMBER,))


def pipeline(client, pipeline_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/pipelines/{pipeline_id}")
    assert response.status_code == 200, response.content
    return response.json()


def wait_for_run(client, pipeline_id: int, states: set[str], *, timeout_s: float) -> dict[str, Any]:
    """Refresh the run's queued steps (the worker syncs them) until the run is in one of `states`."""

    def reached() -> dict[str, Any] | None:
        run = pipeline(client, pipeline_id)
        if run["state"] in states and all(s["finished_at"] or not s["slurm_job_id"] for s in run["steps"]):
            return run
        for step in run["steps"]:
            if step["slurm_job_id"] and not step["finished_at"]:
                client.post(f"/api/v1/jobs/{step['id']}/refresh")
                break
        return None

    return wait_for(reached, timeout_s=timeout_s, what=f"run {pipeline_id} to reach {sorted(states)}", every_s=1.0)


def upload(client, job_id: int, name: str, data: bytes) -> None:
    response = client.post(f"/api/v1/jobs/{job_id}/inputs", {"file": SimpleUploadedFile(name, data)})
    assert response.status_code == 202, response.content


def create_builtin_run(client, setup, title: str) -> dict[str, Any]:
    """A run of the built-in protocol on the water box (its equilibration reads restraints.txt)."""
    created = client.post(
        "/api/v1/pipelines",
        {
            "protocol_id": Protocol.objects.get(slug="min-equil-prod").pk,
            "cluster_id": setup.profile.pk,
            "recipe": RECIPE,
            "title": title,
            "values": {**WATER, **QUICK, **CELL, "run_steps": RUN_STEPS, "restraints": "restraints.txt"},
            "resources": {"partition": "debug", "walltime_s": 600},
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    return created.json()


def submit_when_ready(client, run: dict[str, Any]) -> None:
    holder = run["upload_job_id"]
    wait_for(lambda: job(client, holder)["state"] == "READY", timeout_s=90, what="the run's inputs READY")
    response = client.post(f"/api/v1/pipelines/{run['id']}/submit")
    assert response.status_code == 202, response.content


def first_timestep(config: str) -> int:
    return int(re.search(r"^firsttimestep\s+(\d+)", config, re.MULTILINE).group(1))


def test_the_built_in_protocol_fails_on_a_bad_input_resumes_and_completes(setup) -> None:
    client = setup.client(setup.members[0])
    run = create_builtin_run(client, setup, "water protocol")
    steps = run["steps"]
    assert [s["stage_name"] for s in steps] == [
        "minimization",
        "equilibration",
        "production 1/3",
        "production 2/3",
        "production 3/3",
    ]
    assert {s["state"] for s in steps} == {"DRAFT"}
    assert run["state"] == "DRAFT"
    assert run["upload_job_id"] == steps[0]["id"]
    problems = {p["file"] for p in run["input_problems"]}
    assert problems == {"water.psf", "water.pdb", "par_water.prm", "restraints.txt"}  # every step's, once

    upload_inputs(client, steps[0]["id"])
    upload(client, steps[0]["id"], "restraints.txt", BAD_RESTRAINTS)
    submit_when_ready(client, run)
    queued = wait_for(
        lambda: all((r := pipeline(client, run["id"]))["steps"][i]["slurm_job_id"] for i in range(5)) and r,
        timeout_s=90,
        what="every step queued",
    )
    chain_execs = RemoteCommandRecord.objects.filter(user=setup.members[0], argv__0="bash")
    assert chain_execs.count() == 1  # five steps, one exec
    ids = [int(s["slurm_job_id"]) for s in queued["steps"]]
    assert ids == sorted(ids)

    failed = wait_for_run(client, run["id"], {"FAILED"}, timeout_s=300)
    states = [s["state"] for s in failed["steps"]]
    assert states == ["COMPLETED", "FAILED", "CANCELLED", "CANCELLED", "CANCELLED"], failed["steps"]
    assert failed["current_position"] == 2
    assert {s["error_code"] for s in failed["steps"][2:]} == {"STAGE_NOT_RUN"}
    assert "Not run: step 2 (equilibration)" in failed["steps"][2]["error_message"]
    never_started = [s for s in failed["steps"][2:] if s["started_at"] is None]
    assert len(never_started) == 3  # cancelled in SLURM before they ran, not left pending
    session = setup.session(setup.members[0])
    accounted = session.slurm().statuses([s["slurm_job_id"] for s in failed["steps"][2:]])
    assert {status.state_verbatim.split()[0] for status in accounted.values()} == {"CANCELLED"}

    resumed = client.post(f"/api/v1/pipelines/{run['id']}/resume", {}, content_type="application/json")
    assert resumed.status_code == 200, resumed.content
    resumed = resumed.json()
    assert resumed["upload_job_id"] == resumed["steps"][1]["id"] != failed["steps"][1]["id"]
    assert [s["state"] for s in resumed["steps"]][:1] == ["COMPLETED"]
    upload(client, resumed["upload_job_id"], "restraints.txt", GOOD_RESTRAINTS)  # the fixed file
    submit_when_ready(client, resumed)
    done = wait_for_run(client, run["id"], {"COMPLETED", "FAILED"}, timeout_s=400)
    assert done["state"] == "COMPLETED", done["steps"]
    assert done["steps"][0]["id"] == steps[0]["id"]  # the completed step was not run again
    assert len(done["history"]) == 9  # 5 first, 4 resumed

    equilibration, production = (job(client, done["steps"][i]["id"]) for i in (1, 2))
    assert "equilibration.coor" in production["config"]
    assert "restraints.txt" in equilibration["config"]
    assert first_timestep(production["config"]) == QUICK["minimize_steps"] + RUN_STEPS
    third = job(client, done["steps"][4]["id"])
    assert first_timestep(third["config"]) == QUICK["minimize_steps"] + 3 * RUN_STEPS
    assert client.get(f"/api/v1/jobs/{third['id']}/progress").json()["last_step"] == 50 + 4 * RUN_STEPS

    energies = client.get(f"/api/v1/pipelines/{run['id']}/energies?columns=TOTAL,TEMP").json()
    axis = [step for step, _ in energies["series"]["TOTAL"]]
    assert axis == sorted(axis)
    assert axis[-1] >= 50 + 4 * RUN_STEPS
    assert len(energies["starts"]) == 5


def test_a_timed_out_step_continues_inside_the_chain(setup) -> None:
    client = setup.client(setup.members[0])
    protocol = Protocol(name="too long then more", slug="too-long-then-more")
    save_protocol(
        protocol=protocol,
        stages=[
            ProtocolStage(
                position=1,
                name="long equilibration",
                template=Template.objects.get(slug="npt-equilibration"),
                continuation="first",
                values={"output_name": "long", "run_steps": 60_000, "restart_every": 500},
                resources={"walltime_s": 60},
            ),
            ProtocolStage(
                position=2,
                name="production",
                template=Template.objects.get(slug="production-restart"),
                continuation="restart",
                values={"output_name": "after", "run_steps": RUN_STEPS},
            ),
        ],
    )
    created = client.post(
        "/api/v1/pipelines",
        {
            "protocol_id": protocol.pk,
            "cluster_id": setup.profile.pk,
            "recipe": RECIPE,
            "values": {**WATER, **QUICK, **CELL},
            "resources": {"partition": "debug", "walltime_s": 600},
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    run = created.json()
    first, second = run["steps"]
    assert first_timestep(job(client, second["id"])["config"]) == 50 + 60_000  # the planned end of step 1
    upload_inputs(client, first["id"])
    submit_when_ready(client, run)

    timed_out = wait_for_state(client, first["id"], {"TIMEOUT", "COMPLETED", "FAILED"}, timeout_s=240)
    assert timed_out["state"] == "TIMEOUT"
    wait_until_finished(client, first["id"])
    continuation = wait_for(
        lambda: Job.objects.filter(parent_id=first["id"], pipeline_id=run["id"]).first(),
        timeout_s=60,
        what="the continuation",
    )
    assert continuation.position == 1
    assert continuation.project_dir == first_job_dir(first["id"])
    relinked = wait_for(
        lambda: JobEvent.objects.filter(job_id=second["id"], kind="RELINKED").first(),
        timeout_s=120,
        what="the next step relinked behind the continuation",
    )
    assert job(client, continuation.pk)["slurm_job_id"] in relinked.detail
    assert job(client, second["id"])["state"] in {"PENDING", "RUNNING", "COMPLETING", "COMPLETED"}

    done = wait_for_run(client, run["id"], {"COMPLETED", "FAILED", "CANCELLED"}, timeout_s=600)
    assert done["state"] == "COMPLETED", done["steps"]
    # A loaded machine's engine may time the continuation out too: it is continued again, inside the chain.
    continuations = continuation_chain(first["id"], run["id"])
    assert continuations[0] == continuation.pk
    assert done["steps"][0]["id"] == continuations[-1]
    assert client.get(f"/api/v1/jobs/{second['id']}/progress").json()["last_step"] == 50 + 60_000 + RUN_STEPS
    energies = client.get(f"/api/v1/pipelines/{run['id']}/energies?columns=TOTAL").json()
    assert [start["job_id"] for start in energies["starts"]] == [first["id"], *continuations, second["id"]]


def continuation_chain(job_id: int, pipeline_id: int) -> list[int]:
    """The ids of a step's continuations in order: each the continuation of the one before."""
    chain: list[int] = []
    while child := Job.objects.filter(parent_id=job_id, pipeline_id=pipeline_id).values_list("pk", flat=True).first():
        chain.append(job_id := child)
    return chain


def first_job_dir(job_id: int) -> str:
    return Job.objects.get(pk=job_id).project_dir


def test_an_imported_charmm_gui_protocol_runs_step4_then_step5_twice(setup, lab_admin, tmp_path) -> None:
    shutil.copytree(CHARMM_GUI, tmp_path / "charmm-gui-1234567")
    step4, _ = import_charmm_gui(source=tmp_path / "charmm-gui-1234567", user=lab_admin, production_repeats=2)
    protocol = family_protocol(step4.family)
    LaunchRecipe.objects.create(profile=setup.profile, **FAST_RECIPE)
    client = setup.client(setup.members[0])
    created = client.post(
        "/api/v1/pipelines",
        {
            "protocol_id": protocol.pk,
            "cluster_id": setup.profile.pk,
            "recipe": FAST_RECIPE["name"],
            "title": "tip3 box, 2 segments",
            "resources": {"partition": "debug", "walltime_s": 1800},
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    run = created.json()
    assert [s["stage_name"] for s in run["steps"]] == [
        "step4 equilibration",
        "step5 production 1/2",
        "step5 production 2/2",
    ]
    upload = SimpleUploadedFile("charmm-gui.tgz", member_archive(), content_type="application/gzip")
    assert client.post(f"/api/v1/jobs/{run['upload_job_id']}/archives", {"file": upload}).status_code == 202
    submit_when_ready(client, run)
    done = wait_for_run(client, run["id"], {"COMPLETED", "FAILED", "CANCELLED"}, timeout_s=900)
    assert done["state"] == "COMPLETED", done["steps"]

    second, third = (job(client, done["steps"][i]["id"]) for i in (1, 2))
    assert re.search(r"^set inputname\s+step4_equilibration;", second["config"], re.MULTILINE)
    assert re.search(r"^set inputname\s+step5_production_1;", third["config"], re.MULTILINE)
    assert re.search(r"^outputName\s+step5_production_2;", third["config"], re.MULTILINE)
    assert third["config_path"] == "namd/step5_production_2.namd"
    client.post(f"/api/v1/jobs/{third['id']}/files/refresh")
    files = wait_for(
        lambda: {f["path"] for f in client.get(f"/api/v1/jobs/{third['id']}/files").json()["files"]} or None,
        timeout_s=60,
        what="the run's folder listing",
    )
    written = {f"namd/{name}.coor" for name in ("step4_equilibration", "step5_production_1", "step5_production_2")}
    assert written <= files  # every step's results copied back into the one project folder


def test_an_input_gone_from_the_cluster_stops_the_run_before_anything_is_queued(setup) -> None:
    member = setup.members[0]
    client = setup.client(member)
    run = create_builtin_run(client, setup, "water, an input deleted")
    holder = run["upload_job_id"]
    upload_inputs(client, holder)
    upload(client, holder, "restraints.txt", GOOD_RESTRAINTS)
    wait_for(lambda: job(client, holder)["state"] == "READY", timeout_s=90, what="the run's inputs READY")
    session = setup.session(member)
    assert session.run(["rm", "--", f"{run['project_dir']}/water.pdb"]).exit_code == 0  # the member, in a shell

    assert client.post(f"/api/v1/pipelines/{run['id']}/submit").status_code == 202
    stopped = wait_for(
        lambda: (r := pipeline(client, run["id"]))["steps"][0]["error_code"] and r,
        timeout_s=90,
        what="the submission to stop",
    )
    first, *others = stopped["steps"]
    assert (first["state"], first["error_code"]) == ("READY", "STAGING_FAILED")
    assert "missing from the project folder" in first["error_message"]
    assert {step["state"] for step in others} == {"DRAFT"}
    assert not any(step["slurm_job_id"] for step in stopped["steps"])
    tags = [batch_script.job_name(uuid.UUID(step["uuid"]), step["title"]) for step in stopped["steps"]]
    assert not any(session.slurm().find_by_names(tags).values())  # nothing reached SLURM
    assert RemoteCommandRecord.objects.filter(user=member, argv__0="bash").count() == 1

    upload_inputs(client, holder, ("water.pdb",))
    submit_when_ready(client, pipeline(client, run["id"]))

    def all_queued() -> dict[str, Any] | None:
        found = pipeline(client, run["id"])
        return found if all(step["slurm_job_id"] for step in found["steps"]) else None

    queued = wait_for(all_queued, timeout_s=90, what="every step queued once the input is back")
    assert not any(step["error_code"] for step in queued["steps"])
    assert client.post(f"/api/v1/pipelines/{run['id']}/cancel").status_code == 202
    wait_for_run(client, run["id"], {"CANCELLED"}, timeout_s=120)
