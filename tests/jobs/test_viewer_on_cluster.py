"""The 3D view on the local SLURM cluster, through the API and real Celery workers.

Ubiquitin (the test corpus's real psfgen PSF and PDB) runs on the stand-in engine, writing a DCD frame every
500 steps. The view is opened before submission: the inputs are in the job folder on the cluster by then (their
staged copies gone), and the task reads them there as the owner (tests/jobs/test_viewer_staged_fast.py builds
one from staged copies). It is followed while the job runs (the sync reads the newest frames) and read whole
once the results are back; each frame served is compared with the same frame of the DCD on the cluster. A
worker SIGKILLed while it prepares a view leaves an order that a new worker finishes. Admins see a view but
cannot open one; other members do not see it.
"""

from __future__ import annotations

import gzip
import os
import signal
import time
import uuid
from array import array
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from bench.solvated_system import write_system
from jobs.models import InputFile, Job, JobView
from jobs.namd_files.dcd import read_frame, read_header
from portal import task_orders
from portal.celery import app as celery_app
from portal.models import TaskOrder
from tests.conftest import celery_process
from tests.factories import UserFactory
from tests.jobs.cluster_jobs import (
    CELL,
    FIXTURES,
    create_job,
    job,
    register,
    wait_for,
    wait_for_state,
    wait_until_finished,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_viewer"
INPUTS = Path(__file__).resolve().parents[1] / "fixtures" / "namd_inputs"
UBQ_ATOMS = 1231
FRAMES = 30  # 100 steps of minimization and 15,000 of dynamics, a frame every 500
VALUES = {
    "structure": "ubq.psf",
    "coordinates": "ubq.pdb",
    "parameters": "par_water.prm",
    **CELL,
    "output_energies": 100,
    "restart_every": 500,
    "dcd_every": 500,
    "minimize_steps": 100,
    "output_name": "ubq",
}


def upload_ubiquitin(client: Client, job_id: int) -> None:
    for path in (INPUTS / "ubq.psf", INPUTS / "ubq.pdb", FIXTURES / "par_water.prm"):
        with path.open("rb") as stream:
            response = client.post(f"/api/v1/jobs/{job_id}/inputs", {"file": stream})
        assert response.status_code == 202, response.content


def view(client: Client, job_id: int) -> dict:
    response = client.get(f"/api/v1/jobs/{job_id}/view")
    assert response.status_code == 200, response.content
    return response.json()


def ready_view(client: Client, job_id: int, *, timeout_s: float = 120) -> dict:
    answer = wait_for(
        lambda: (v := view(client, job_id))["state"] in ("READY", "FAILED") and v, timeout_s=timeout_s, what="the view"
    )
    assert answer["state"] == "READY", answer
    return answer


def frame_of(client: Client, job_id: int, index: int) -> array:
    response = client.get(f"/api/v1/jobs/{job_id}/view/frames/{index}?part=solute", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200, response.content
    assert response["Content-Encoding"] == "gzip"
    values = array("f")
    values.frombytes(gzip.decompress(response.content))
    return values


def cluster_dcd(setup, member, path: str) -> bytes:
    session = setup.session(member)
    size = int(session.run(["stat", "-c", "%s", "--", path]).stdout)
    (data,) = session.read_ranges(path, [(0, size)])
    return data


def test_a_members_molecule_is_shown_before_submission_followed_while_it_runs_and_read_whole_at_the_end(
    celery_worker,
) -> None:
    setup = register((MEMBER,))
    member = setup.members[0]
    client = setup.client(member)
    job_id = create_job(client, setup.profile, values={**VALUES, "run_steps": 15000}, title="ubiquitin")["id"]
    upload_ubiquitin(client, job_id)
    wait_for(lambda: job(client, job_id)["state"] == "READY", timeout_s=90, what="READY")

    opened = client.post(f"/api/v1/jobs/{job_id}/view")
    assert opened.status_code == 202, opened.content
    # READY: the inputs are on the cluster and their staged copies gone, so the view reads them from there.
    inputs = InputFile.objects.filter(job_id=job_id, name__in=["ubq.psf", "ubq.pdb"])
    assert sorted(inputs.values_list("name", "staged_path")) == [("ubq.pdb", ""), ("ubq.psf", "")]
    before = ready_view(client, job_id)
    assert before["atom_count"] == UBQ_ATOMS
    assert {part: facts["atoms"] for part, facts in before["parts"].items()} == {"solute": UBQ_ATOMS}
    assert before["trajectory_path"] == "ubq.dcd"
    assert before["frames"] == []
    assert [[round(x, 3) for x in v] for v in before["cell"]["vectors"]] == [[30, 0, 0], [0, 30, 0], [0, 0, 30]]
    pdb = client.get(before["parts"]["solute"]["url"], HTTP_ACCEPT_ENCODING="gzip")
    assert pdb["Content-Encoding"] == "gzip"
    records = [line for line in gzip.decompress(pdb.content).decode().splitlines() if line.startswith("ATOM")]
    assert len(records) == UBQ_ATOMS
    assert records[0][12:26] == " N   MET A   1"
    plain = client.get(before["parts"]["solute"]["url"])  # a client that takes no gzip gets the text
    assert "Content-Encoding" not in plain
    assert plain.content == gzip.decompress(pdb.content)

    assert client.post(f"/api/v1/jobs/{job_id}/submit").status_code == 202
    wait_for_state(client, job_id, {"RUNNING"}, timeout_s=120)

    def frames_while_running() -> dict | None:
        client.post(f"/api/v1/jobs/{job_id}/refresh")
        current = view(client, job_id)
        return current if current["frames"] and job(client, job_id)["state"] == "RUNNING" else None

    running = wait_for(frames_while_running, timeout_s=60, what="frames while the job runs", every_s=1.0)
    newest = running["frames"][-1]
    assert newest["index"] == running["frames_available"] - 1  # the newest frame is always among those kept
    assert newest["step"] == 500 * (newest["index"] + 1)  # a frame every 500 steps, minimization's included

    wait_for_state(client, job_id, {"COMPLETED"}, timeout_s=180)
    finished = wait_until_finished(client, job_id, timeout_s=120)
    assert finished["state"] == "COMPLETED"
    whole = wait_for(
        lambda: (v := view(client, job_id))["frames_available"] == len(v["frames"]) == FRAMES and v,
        timeout_s=120,
        what="every frame once the results are back",
    )
    dcd = cluster_dcd(setup, member, f"{Job.objects.get(pk=job_id).project_dir}/ubq.dcd")
    header = read_header(dcd)
    assert [frame["step"] for frame in whole["frames"]] == [header.step_of(i) for i in range(FRAMES)]
    for index in (0, 17, FRAMES - 1):
        expected = read_frame(header, dcd[header.frame_offset(index) : header.frame_offset(index + 1)], 0)
        assert list(frame_of(client, job_id, index)) == pytest.approx(list(expected.xyz), abs=1 / 128)

    exported = client.get(f"/api/v1/jobs/{job_id}/view/frames.dcd?part=solute&start=10&stop=13")
    assert exported.status_code == 200
    again = read_header(exported.content)
    assert (again.atoms, again.frames_written, again.first_step) == (UBQ_ATOMS, 3, whole["frames"][10]["step"])

    problem = client.get(f"/api/v1/jobs/{job_id}/view/frames/999?part=solute")
    assert (problem.status_code, problem.json()["error"]["code"]) == (404, "VIEW_FRAME_NOT_FOUND")
    problem = client.get(f"/api/v1/jobs/{job_id}/view/parts/water")
    assert (problem.status_code, problem.json()["error"]["code"]) == (422, "VIEW_PART_UNKNOWN")


def test_an_admin_sees_a_members_view_but_cannot_open_one_and_others_do_not_see_it(celery_worker, lab_admin) -> None:
    setup = register((f"{MEMBER}2",))
    client = setup.client(setup.members[0])
    job_id = create_job(client, setup.profile, values={**VALUES, "run_steps": 500}, title="ubiquitin")["id"]
    upload_ubiquitin(client, job_id)
    admin, stranger = Client(), Client()
    admin.force_login(lab_admin)
    stranger.force_login(UserFactory())

    refused = admin.post(f"/api/v1/jobs/{job_id}/view")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "JOB_NOT_YOURS")
    assert client.post(f"/api/v1/jobs/{job_id}/view").status_code == 202
    ready_view(client, job_id)

    assert view(admin, job_id)["atom_count"] == UBQ_ATOMS
    assert stranger.get(f"/api/v1/jobs/{job_id}/view").status_code == 404
    assert stranger.get(f"/api/v1/jobs/{job_id}/view/parts/solute").status_code == 404


def test_a_worker_killed_while_it_prepares_a_view_leaves_an_order_another_worker_finishes(
    tmp_path, portal_file_store, monkeypatch
) -> None:
    """A 200k-atom system (its preparation takes seconds), opened before submission: read from the job folder."""
    setup = register((f"{MEMBER}3",))
    queue = f"test-view-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    client = setup.client(setup.members[0])
    system = write_system(tmp_path, 200_000, copies=4)
    values = {**VALUES, "structure": "system.psf", "coordinates": "system.pdb", "run_steps": 500}
    arguments = ["worker", "--queues", queue, "--pool", "prefork", "--concurrency", "1"]
    doomed_worker = [*arguments, "--hostname", "doomed@%h"]
    with celery_process(
        doomed_worker, queue=queue, log_path=tmp_path / "doomed.log", file_store=portal_file_store
    ) as doomed:
        job_id = create_job(client, setup.profile, values=values, title="solvated")["id"]
        for path in (system.psf, system.pdb, FIXTURES / "par_water.prm"):
            with path.open("rb") as stream:
                assert client.post(f"/api/v1/jobs/{job_id}/inputs", {"file": stream}).status_code == 202
        wait_for(lambda: job(client, job_id)["state"] == "READY", timeout_s=120, what="READY")
        assert client.post(f"/api/v1/jobs/{job_id}/view").status_code == 202
        wait_for(
            lambda: TaskOrder.objects.filter(task_name="jobs.tasks.prepare_view_task", state="RUNNING").exists(),
            timeout_s=30,
            what="the preparation to start",
            every_s=0.01,
        )
        time.sleep(0.5)  # reading the structure
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)

    assert JobView.objects.get(job_id=job_id).state == JobView.State.PREPARING  # the kill left it undone
    TaskOrder.objects.filter(done_at=None, task_name="jobs.tasks.prepare_view_task").update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    heir = [*arguments, "--hostname", "heir@%h"]
    with celery_process(heir, queue=queue, log_path=tmp_path / "heir.log", file_store=portal_file_store):
        assert task_orders.dispatch_due_orders() >= 1
        done = ready_view(client, job_id, timeout_s=120)
    assert done["atom_count"] == system.atoms
    assert done["parts"]["solute"]["atoms"] == system.solute_atoms
    assert sum(part["atoms"] for part in done["parts"].values()) == system.atoms

    def all_written() -> dict | None:
        current = view(client, job_id)
        return current if all(part["ready"] for part in current["parts"].values()) else None

    done = wait_for(all_written, timeout_s=60, what="the water and ions, written after the solute")
    water = client.get(done["parts"]["water"]["url"])
    assert (
        sum(line.startswith("HETATM") for line in water.content.decode().splitlines())
        == done["parts"]["water"]["atoms"]
    )
    assert not TaskOrder.objects.filter(done_at=None, task_name="jobs.tasks.prepare_view_task").exists()
    stored = Path(portal_file_store) / "viewer" / Job.objects.get(pk=job_id).uuid.hex
    assert not (stored / "inputs").exists()  # nothing half-fetched is left behind
