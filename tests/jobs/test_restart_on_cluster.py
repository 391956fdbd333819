"""Continuing jobs on the local SLURM cluster: a restart chain keeps the step count; a timed-out job continues."""

from __future__ import annotations

import re

import pytest

from jobs.models import Job
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

MEMBER = "np_ci_restart"
# The stand-in runs 500 steps/s; SLURM ends a 1-minute job 60-90 s after it starts: 60,000 steps cannot finish.
LONG_RUN_STEPS = 60_000


@pytest.fixture
def setup(celery_worker):
    setup = register((MEMBER,))
    yield setup
    setup.session(setup.members[0]).run(["scancel", "--user", MEMBER])  # the continuation may still run


def submit_when_ready(client, job_id: int) -> None:
    wait_for(lambda: job(client, job_id)["state"] == "READY", timeout_s=60, what=f"job {job_id} READY")
    assert client.post(f"/api/v1/jobs/{job_id}/submit").status_code == 202


def last_step(client, job_id: int) -> int:
    return client.get(f"/api/v1/jobs/{job_id}/progress").json()["last_step"]


def first_timestep(config: str) -> int:
    return int(re.search(r"^firsttimestep\s+(\d+)", config, re.MULTILINE).group(1))


def restart(client, job_id: int, **payload) -> int:
    response = client.post(f"/api/v1/jobs/{job_id}/restart", payload, content_type="application/json")
    assert response.status_code == 202, response.content
    child = response.json()["job"]
    assert child["parent_id"] == job_id
    return child["id"]


def test_a_chain_of_three_continues_the_step_count_and_a_timeout_continues_by_itself(setup) -> None:
    client = setup.client(setup.members[0])
    # Started first: the timed-out job takes 60-90 s, while the chain runs beside it.
    long = create_job(
        client,
        setup.profile,
        title="too long",
        walltime_s=60,
        continue_on_timeout=True,
        values={**WATER, **QUICK, **CELL, "run_steps": LONG_RUN_STEPS, "restart_every": 500},
    )
    upload_inputs(client, long["id"])
    submit_when_ready(client, long["id"])

    first = create_job(client, setup.profile, title="chain", values={**WATER, **QUICK, **CELL, "run_steps": 200})
    upload_inputs(client, first["id"])
    submit_when_ready(client, first["id"])
    assert wait_for_state(client, first["id"], {"COMPLETED", "FAILED"})["state"] == "COMPLETED"
    wait_until_finished(client, first["id"])
    assert last_step(client, first["id"]) == 250  # 50 minimization steps + 200 of dynamics

    chain = [first["id"]]
    for _ in range(2):
        child_id = restart(client, chain[-1])
        assert wait_for_state(client, child_id, {"COMPLETED", "FAILED"})["state"] == "COMPLETED"
        wait_until_finished(client, child_id)
        chain.append(child_id)
    second, third = (job(client, job_id) for job_id in chain[1:])
    assert (second["template"], third["template"]) == ("production-restart", "production-restart")
    assert first_timestep(second["config"]) == 250
    assert first_timestep(third["config"]) == 450
    assert last_step(client, chain[2]) == 650
    restart_inputs = {i["name"] for i in third["inputs"]}
    tag = f"restart-{second['uuid'].replace('-', '')[:8]}"
    assert {f"{tag}.coor", f"{tag}.vel", f"{tag}.xsc", "water.psf", "water.pdb", "par_water.prm"} == restart_inputs

    timed_out = wait_for_state(client, long["id"], {"TIMEOUT", "COMPLETED", "FAILED"}, timeout_s=180)
    assert timed_out["state"] == "TIMEOUT"
    wait_until_finished(client, long["id"])
    stopped_at = last_step(client, long["id"])
    assert 0 < stopped_at < 50 + LONG_RUN_STEPS
    continuation = wait_for(
        lambda: Job.objects.filter(parent_id=long["id"]).first(), timeout_s=30, what="the automatic continuation"
    )
    continued = wait_for(
        lambda: (j := job(client, continuation.pk))["config"] and j, timeout_s=60, what="the continuation's config"
    )
    resumed_from = first_timestep(continued["config"])
    assert 0 < resumed_from <= stopped_at  # the last restart files were written at or before the last step logged
    assert resumed_from % 500 == 0
    assert continued["values"]["run_steps"] == 50 + LONG_RUN_STEPS - resumed_from  # only what was left
