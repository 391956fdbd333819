"""Jobs run to their end on the local cluster for the accounting tests, and beat's part in accounting them."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.utils import timezone

from accounting import services
from clusters.models import ClusterProfile
from tests.jobs.cluster_jobs import (
    CELL,
    QUICK,
    WATER,
    create_job,
    upload_inputs,
    wait_for,
    wait_for_state,
    wait_until_finished,
)


def run_jobs_to_their_end(
    client: Client, profile: ClusterProfile, cpus: tuple[int, ...], *, run_steps: int = 200
) -> list[dict[str, Any]]:
    """One short water-box job per entry of `cpus` (its CPUs per task), submitted, then finished: the jobs."""
    job_ids = []
    for n, cpus_per_task in enumerate(cpus):
        created = create_job(
            client,
            profile,
            values={**WATER, **QUICK, **CELL, "run_steps": run_steps, "output_name": f"use{n}"},
            resources={"partition": "debug", "walltime_s": 600, "cpus_per_task": cpus_per_task},
        )
        upload_inputs(client, created["id"])
        wait_for(
            lambda job_id=created["id"]: client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "READY",
            timeout_s=60,
            what="READY",
        )
        assert client.post(f"/api/v1/jobs/{created['id']}/submit").status_code == 202
        job_ids.append(created["id"])
    for job_id in job_ids:
        wait_for_state(client, job_id, {"COMPLETED", "FAILED"}, timeout_s=180)
    return [wait_until_finished(client, job_id, timeout_s=120) for job_id in job_ids]


def sweep_as_beat_would() -> None:
    """Beat's accounting sweep (not running in these tests), a while later: a group whose job finished while
    its order ran is ordered again."""
    services.request_due_accounting(now=timezone.now() + services.SWEEP_AFTER)
