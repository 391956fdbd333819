"""The whole job lifecycle on the local SLURM cluster, through the API and a real Celery worker."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from clusters.models import RemoteCommandRecord
from jobs import services
from jobs.models import Job, JobEvent
from tests.jobs.cluster_jobs import (
    CELL,
    FIXTURES,
    QUICK,
    WATER,
    create_job,
    job,
    register,
    upload_inputs,
    wait_for,
    wait_for_state,
    wait_until_finished,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_jobs"
WATER_ATOMS = int((FIXTURES / "water.psf").read_text().split("!NATOM")[0].split()[-1])


@pytest.fixture
def setup(celery_worker):
    return register((MEMBER,))


def test_create_upload_submit_completes_with_results_energies_and_job_json(setup) -> None:
    client = setup.client(setup.members[0])
    created = create_job(
        client, setup.profile, values={**WATER, **QUICK, **CELL, "run_steps": 300, "output_name": "eq"}
    )
    job_id = created["id"]
    assert created["state"] == "DRAFT"
    assert "--job-name=np-" in created["batch_script"]
    upload_inputs(client, job_id)
    ready = wait_for(lambda: (j := job(client, job_id))["state"] == "READY" and j, timeout_s=60, what="READY")
    assert {i["name"]: i["state"] for i in ready["inputs"]} == dict.fromkeys(
        ("par_water.prm", "water.pdb", "water.psf"), "UPLOADED"
    )
    counts = {i["name"]: i["atom_count"] for i in ready["inputs"]}
    assert counts == {"water.psf": WATER_ATOMS, "water.pdb": WATER_ATOMS, "par_water.prm": None}

    submitted = client.post(f"/api/v1/jobs/{job_id}/submit")
    assert submitted.status_code == 202
    assert submitted.json()["job"]["state"] == "SUBMITTING"
    assert submitted.json()["task_id"]
    again = client.post(f"/api/v1/jobs/{job_id}/submit")  # a second click submits nothing more
    assert again.status_code == 202
    assert again.json()["task_id"] == ""

    done = wait_for_state(client, job_id, {"COMPLETED", "FAILED"})
    assert done["state"] == "COMPLETED", done
    finished = wait_until_finished(client, job_id)
    assert finished["exit_code"] == 0  # sacct's, read once the results are back
    assert finished["started_at"]
    assert finished["ended_at"]

    progress = client.get(f"/api/v1/jobs/{job_id}/progress").json()
    assert progress["last_step"] == 350  # 50 minimization steps, then 300 of dynamics
    assert progress["wallclock_s"] is not None
    assert progress["fatal_errors"] == []
    energies = client.get(f"/api/v1/jobs/{job_id}/energies?columns=TOTAL,TEMP").json()
    assert set(energies["series"]) == {"TOTAL", "TEMP"}
    assert energies["series"]["TOTAL"][-1][0] == 350
    files = {f["path"] for f in client.get(f"/api/v1/jobs/{job_id}/files").json()["files"]}
    assert {"eq.coor", "eq.vel", "eq.xsc", "eq.dcd", "job.namd", "job.sbatch", "job.json", "water.psf"} <= files
    assert f"slurm-{done['slurm_job_id']}.out" in files  # the NAMD log came back with the results

    session = setup.session(setup.members[0])
    document = json.loads(session.run(["cat", "--", f"{finished['project_dir']}/job.json"], check=True).stdout)
    assert (document["uuid"], document["state"], document["slurm_job_id"]) == (
        finished["uuid"],
        "COMPLETED",
        done["slurm_job_id"],
    )
    assert [entry["new"] for entry in document["history"] if entry["kind"] == "TRANSITION"][-1] == "COMPLETED"

    download = client.post(f"/api/v1/jobs/{job_id}/downloads", {"path": "eq.xsc"}, content_type="application/json")
    assert download.status_code == 202
    download_id = download.json()["id"]
    wait_for(
        lambda: client.get(f"/api/v1/jobs/{job_id}/downloads/{download_id}").json()["state"] == "READY",
        timeout_s=30,
        what="the download",
    )
    content = client.get(f"/api/v1/jobs/{job_id}/downloads/{download_id}/content")
    assert content.status_code == 200
    xsc = b"".join(content.streaming_content).decode()
    assert xsc.splitlines()[-1].split()[0] == "350"
    # A file that is not there fails with its code and a sentence the member can act on.
    missing = client.post(f"/api/v1/jobs/{job_id}/downloads", {"path": "eq.nothing"}, content_type="application/json")
    missing_url = f"/api/v1/jobs/{job_id}/downloads/{missing.json()['id']}"
    wait_for(lambda: client.get(missing_url).json()["state"] == "FAILED", timeout_s=30, what="the failed download")
    failed = client.get(missing_url).json()
    assert failed["error_code"] == "REMOTE_FILE_MISSING"
    assert failed["error_message"] == "That file is not in the folder on the cluster, or you may not read it."
    content = client.get(f"{missing_url}/content")
    assert (content.status_code, content.json()["error"]["code"]) == (409, "DOWNLOAD_FAILED")

    kinds = list(JobEvent.objects.filter(job_id=job_id).values_list("new_state", flat=True))
    assert kinds[:5] == ["DRAFT", "UPLOADING", "READY", "SUBMITTING", "PENDING"]
    assert "COMPLETED" in kinds


def test_a_namd_failure_ends_failed_with_its_fatal_error_and_logs_copied_back(setup) -> None:
    client = setup.client(setup.members[0])
    created = create_job(client, setup.profile, values={**WATER, **QUICK, **CELL, "run_steps": 100})
    job_id = created["id"]
    upload_inputs(client, job_id, ("water.psf", "par_water.prm"))
    # The config reads water.pdb, so the job cannot be submitted until it is there: the portal says so.
    refused = client.post(f"/api/v1/jobs/{job_id}/submit")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "INPUTS_NOT_READY"
    problems = refused.json()["error"]["details"]["problems"]
    assert {p["file"] for p in problems if p["code"] == "INPUT_MISSING"} == {"water.pdb"}
    # A PDB with the right atom count whose coordinates are not numbers passes the portal's checks (records,
    # counts) but not NAMD's reader: the engine fails for real.
    text = (FIXTURES / "water.pdb").read_text().replace("   0.957   0.000", "   xxxxx   0.000", 1)
    bad_pdb = SimpleUploadedFile("water.pdb", text.encode())
    assert client.post(f"/api/v1/jobs/{job_id}/inputs", {"file": bad_pdb}).status_code == 202
    wait_for(lambda: job(client, job_id)["state"] == "READY", timeout_s=60, what="READY")
    assert client.post(f"/api/v1/jobs/{job_id}/submit").status_code == 202
    done = wait_for_state(client, job_id, {"COMPLETED", "FAILED"})
    assert done["state"] == "FAILED"
    assert wait_until_finished(client, job_id)["exit_code"] == 1
    progress = client.get(f"/api/v1/jobs/{job_id}/progress").json()
    assert progress["fatal_errors"]
    assert "FATAL ERROR" in progress["fatal_errors"][0]
    logs = client.get(f"/api/v1/jobs/{job_id}/logs").json()
    assert "FATAL ERROR" in logs["log_tail"]
    files = {f["path"] for f in client.get(f"/api/v1/jobs/{job_id}/files").json()["files"]}
    assert f"slurm-{done['slurm_job_id']}.out" in files


def test_cancel_while_running_follows_slurm_to_cancelled(setup) -> None:
    client = setup.client(setup.members[0])
    created = create_job(client, setup.profile, values={**WATER, **QUICK, **CELL, "run_steps": 500_000})
    job_id = created["id"]
    upload_inputs(client, job_id)
    wait_for(lambda: job(client, job_id)["state"] == "READY", timeout_s=60, what="READY")
    client.post(f"/api/v1/jobs/{job_id}/submit")
    wait_for_state(client, job_id, {"RUNNING"}, timeout_s=90)

    def has_progress() -> bool:
        client.post(f"/api/v1/jobs/{job_id}/refresh")
        return client.get(f"/api/v1/jobs/{job_id}/progress").json()["last_step"] is not None

    wait_for(has_progress, timeout_s=60, what="progress while running", every_s=1.0)
    running = client.get(f"/api/v1/jobs/{job_id}/progress").json()
    assert running["fraction_done"] is not None
    assert 0 < running["fraction_done"] < 1
    cancelled = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 202
    assert cancelled.json()["job"]["state"] == "RUNNING"
    done = wait_for_state(client, job_id, {"CANCELLED"}, timeout_s=90)
    assert done["slurm_state"].startswith("CANCELLED")
    wait_until_finished(client, job_id)
    assert JobEvent.objects.filter(job_id=job_id, kind="CANCEL_REQUESTED").count() == 1
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").json()["error"]["code"] == "JOB_ALREADY_ENDED"


def test_bulk_cancel_from_the_jobs_list_stops_both_jobs_with_one_scancel(setup) -> None:
    member = setup.members[0]
    client = setup.client(member)
    job_ids = []
    for title in ("long one", "long two"):
        created = create_job(
            client, setup.profile, values={**WATER, **QUICK, **CELL, "run_steps": 500_000}, title=title
        )
        upload_inputs(client, created["id"])
        job_ids.append(created["id"])
    for job_id in job_ids:
        wait_for(lambda job_id=job_id: job(client, job_id)["state"] == "READY", timeout_s=60, what="READY")
        client.post(f"/api/v1/jobs/{job_id}/submit")
    slurm_ids = [wait_for_state(client, job_id, {"PENDING", "RUNNING"})["slurm_job_id"] for job_id in job_ids]

    response = client.post("/jobs/bulk/", {"action": "cancel", "job_ids": [str(job_id) for job_id in job_ids]})
    assert response.status_code == 302
    for job_id in job_ids:
        assert wait_for_state(client, job_id, {"CANCELLED"}, timeout_s=90)["slurm_state"].startswith("CANCELLED")
    scancels = [
        record.argv for record in RemoteCommandRecord.objects.filter(user=member) if record.argv[0] == "scancel"
    ]
    assert scancels == [["scancel", "--", *slurm_ids]]


def test_delete_removes_the_remote_dirs_and_keeps_the_row(setup) -> None:
    client = setup.client(setup.members[0])
    created = create_job(client, setup.profile, values={**WATER, **QUICK, **CELL, "run_steps": 100})
    job_id = created["id"]
    upload_inputs(client, job_id)
    wait_for(lambda: job(client, job_id)["state"] == "READY", timeout_s=60, what="READY")
    session = setup.session(setup.members[0])
    assert session.run(["test", "-d", created["project_dir"]]).exit_code == 0
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 202
    assert client.get(f"/api/v1/jobs/{job_id}").status_code == 404
    wait_for(
        lambda: session.run(["test", "-e", created["project_dir"]]).exit_code == 1,
        timeout_s=30,
        what="the project dir to be removed",
    )
    assert Job.objects.get(pk=job_id).deleted_at is not None


def test_a_retried_submission_adopts_the_first_sbatch_instead_of_submitting_twice(setup) -> None:
    client = setup.client(setup.members[0])
    created = create_job(client, setup.profile, values={**WATER, **QUICK, **CELL, "run_steps": 100})
    job_id = created["id"]
    upload_inputs(client, job_id)
    wait_for(lambda: job(client, job_id)["state"] == "READY", timeout_s=60, what="READY")
    member = setup.members[0]
    Job.objects.filter(pk=job_id).update(state="SUBMITTING")
    services.submit_job(job_id=job_id, acting_user_id=member.pk)
    first_id = Job.objects.get(pk=job_id).slurm_job_id
    assert first_id
    # The reply was lost: the task runs again with the job still SUBMITTING and no id recorded.
    Job.objects.filter(pk=job_id).update(state="SUBMITTING", slurm_job_id="")
    services.submit_job(job_id=job_id, acting_user_id=member.pk)
    again = Job.objects.get(pk=job_id)
    assert (again.state, again.slurm_job_id, again.submit_attempts) == ("PENDING", first_id, 2)
    tag = f"np-{again.uuid.hex[:12]}"
    names = setup.session(member).run(["squeue", "--me", "--noheader", "--states=all", "--format=%j"]).stdout
    assert sum(1 for name in names.split() if name.startswith(tag)) == 1
    assert "found by its tag" in JobEvent.objects.filter(job_id=job_id, new_state="PENDING").last().detail
