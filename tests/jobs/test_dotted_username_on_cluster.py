"""A cluster username with a dot (`first.last`, as real sites have) works for every job action, on the real
local cluster: the credential, the roots, the batch script, submission, the sync, results and deletion."""

from __future__ import annotations

import pytest

from clusters.models import ClusterCredential
from tests.jobs.cluster_jobs import (
    CELL,
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

MEMBER = "np.ci.dotted"


@pytest.fixture
def setup(celery_worker):
    return register((MEMBER,))


def test_a_dotted_cluster_username_runs_a_job_to_its_results_and_deletes_it(setup) -> None:
    member = setup.members[0]
    assert ClusterCredential.objects.get(user=member, profile=setup.profile).remote_username == MEMBER
    client = setup.client(member)
    created = create_job(client, setup.profile, values={**WATER, **QUICK, **CELL, "run_steps": 100})
    job_id = created["id"]
    assert created["project_dir"].startswith(f"/home/{MEMBER}/namd_projects/")
    assert created["scratch_dir"].startswith(f"/scratch/{MEMBER}/")
    upload_inputs(client, job_id)
    wait_for(lambda: job(client, job_id)["state"] == "READY", timeout_s=60, what="READY")
    assert client.post(f"/api/v1/jobs/{job_id}/submit").status_code == 202
    done = wait_for_state(client, job_id, {"COMPLETED", "FAILED"})
    assert done["state"] == "COMPLETED", done
    wait_until_finished(client, job_id)
    files = {f["path"] for f in client.get(f"/api/v1/jobs/{job_id}/files").json()["files"]}
    assert {"job.json", "job.sbatch", "job.namd"} <= files

    session = setup.session(member)
    assert session.run(["test", "-d", created["project_dir"]]).exit_code == 0
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 202
    wait_for(
        lambda: session.run(["test", "-e", created["project_dir"]]).exit_code == 1,
        timeout_s=60,
        what="the project folder removed",
    )
