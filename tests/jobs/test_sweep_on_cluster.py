"""A 3 x 2 sweep (temperature x cutoff) of the built-in NPT equilibration on the local SLURM cluster, through
the API and a real Celery worker, at most 2 points at once: the inputs uploaded once and copied into every
point, every point COMPLETED with its final energies in the rows, never more than 2 active, CSV and plot."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import pytest

from clusters.models import LaunchRecipe, RemoteCommandRecord
from jobs.models import Job, JobEvent, JobState
from tests.jobs.cluster_jobs import CELL, QUICK, WATER, register, template_id, upload_inputs, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_sweeps"
FAST_RECIPE = {
    "name": "CPU: stand-in unpaced",
    "kind": LaunchRecipe.Kind.CPU,
    "command": "NAMD_STANDIN_STEPS_PER_SECOND=0 srun namd3 +p{cores} {config}",
}
TEMPERATURES = [300, 310, 320]
CUTOFFS = [10, 12]
MINIMIZE_STEPS, RUN_STEPS = QUICK["minimize_steps"], 200


@pytest.fixture
def setup(celery_worker):
    setup = register((MEMBER,))
    LaunchRecipe.objects.create(profile=setup.profile, **FAST_RECIPE)
    return setup


def most_active_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals [start, end) that overlap: an end before a start at the same moment."""
    moments = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    active = most = 0
    for _, change in moments:
        active += change
        most = max(most, active)
    return most


def test_a_3x2_grid_runs_to_the_end_two_points_at_a_time(setup) -> None:
    member = setup.members[0]
    client = setup.client(member)
    created = client.post(
        "/api/v1/sweeps",
        {
            "template_id": template_id("npt-equilibration"),
            "cluster_id": setup.profile.pk,
            "recipe": FAST_RECIPE["name"],
            "title": "water grid",
            "mode": "grid",
            "axes": [{"name": "temperature", "values": TEMPERATURES}, {"name": "cutoff", "values": CUTOFFS}],
            "values": {**WATER, **QUICK, **CELL, "run_steps": RUN_STEPS, "output_name": "eq"},
            "resources": {"partition": "debug", "walltime_s": 600},
            "max_running": 2,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    sweep = created.json()
    sweep_id = sweep["id"]
    assert sweep["points"] == 6

    def detail() -> dict[str, Any]:
        return client.get(f"/api/v1/sweeps/{sweep_id}").json()

    upload_inputs(client, sweep["inputs_job_id"])  # once, to the first point
    wait_for(
        lambda: all(row["state"] == "READY" for row in detail()["rows"]),
        timeout_s=120,
        what="every point READY with the inputs copied into it",
    )
    copies = [r for r in RemoteCommandRecord.objects.filter(user=member) if r.argv[:3] == ["rsync", "-a", "--relative"]]
    assert len(copies) == 5  # into the five other points...
    assert len({record.started_at for record in copies}) == 1  # ...as the parts of one exec

    submitted = client.post(f"/api/v1/sweeps/{sweep_id}/submit")
    assert submitted.status_code == 202, submitted.content
    waiting = detail()  # nothing settles before the refreshes below: two points started, four wait
    assert (waiting["summary"]["states"]["READY"], waiting["summary"]["waiting"]) == (4, 4)

    def all_finished() -> dict[str, Any] | None:
        current = detail()
        jobs = Job.objects.filter(sweep_point__sweep_id=sweep_id)
        if all(job.finished_at is not None for job in jobs):
            return current
        client.post("/api/v1/jobs/refresh")  # the worker syncs; a finish lets the gate start the next point
        return None

    done = wait_for(all_finished, timeout_s=600, what="every point finished", every_s=1.0)

    rows = done["rows"]
    assert [row["state"] for row in rows] == ["COMPLETED"] * 6, rows
    assert [row["values"] for row in rows] == [{"temperature": t, "cutoff": c} for t in TEMPERATURES for c in CUTOFFS]
    for row in rows:
        assert row["last_step"] == MINIMIZE_STEPS + RUN_STEPS
        assert all(row["energies"][column] is not None for column in ("TOTAL", "POTENTIAL", "KINETIC", "TEMP")), row
        energies = client.get(f"/api/v1/jobs/{row['job_id']}/energies?columns=TOTAL,TEMP").json()["series"]
        assert (energies["TOTAL"][-1], energies["TEMP"][-1]) == (
            [MINIMIZE_STEPS + RUN_STEPS, row["energies"]["TOTAL"]],
            [MINIMIZE_STEPS + RUN_STEPS, row["energies"]["TEMP"]],
        )
    files = {f["path"] for f in client.get(f"/api/v1/jobs/{rows[5]['job_id']}/files").json()["files"]}
    assert {"water.psf", "water.pdb", "par_water.prm", "eq.coor"} <= files

    jobs = Job.objects.filter(sweep_point__sweep_id=sweep_id)
    starts = dict(
        JobEvent.objects.filter(job__in=jobs, new_state=JobState.SUBMITTING).values_list("job_id", "created_at")
    )
    intervals = [(starts[job.pk], job.finished_at) for job in jobs]
    assert most_active_at_once(intervals) == 2

    exported = client.get(f"/api/v1/sweeps/{sweep_id}/csv")
    table = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert [(int(r["temperature"]), int(r["cutoff"]), r["state"]) for r in table] == [
        (row["values"]["temperature"], row["values"]["cutoff"], "COMPLETED") for row in rows
    ]
    assert [float(r["final_total"]) for r in table] == [row["energies"]["TOTAL"] for row in rows]

    plot = client.get(f"/api/v1/sweeps/{sweep_id}/plot?figure=temperature&axis=temperature").json()
    assert [series["label"] for series in plot["series"]] == ["cutoff=10", "cutoff=12"]
    by_point = {(row["values"]["temperature"], row["values"]["cutoff"]): row["energies"]["TEMP"] for row in rows}
    for series, cutoff in zip(plot["series"], CUTOFFS, strict=True):
        assert series["points"] == [[t, by_point[(t, cutoff)]] for t in TEMPERATURES]
