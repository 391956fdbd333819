"""Discovery on the real local cluster: job.json files in a member's project root, good and tampered with, and
a pipeline run's step documents (`<step>.json` beside each step's script) found again after its rows are gone.

Each test's member's project root is their own (a cluster user only that test uses), so every document found
is one the test wrote. A refused document is reported with its code, imports nothing, and the member's next
discovery and status sync run as before.
"""

from __future__ import annotations

import json

import pytest

from jobs import remote, services
from jobs.metadata import job_json_bytes
from jobs.models import Job, JobState, Pipeline
from jobs.pipeline_steps import current_steps, pipeline_status
from jobs.services import discover_jobs, sync_member_jobs
from tests.factories import JobFactory
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
from tests.jobs.pipeline_documents import PROTOCOL_SLUG, two_stage_protocol
from tests.jobs.unit_jobs import RESOURCES

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

MEMBER = "np_ci_discovery"
PIPELINE_MEMBER = "np_ci_discovery_run"


def write_document(session, job: Job, text: str) -> None:
    remote.make_dirs(session, job.project_dir)
    session.write_files(job.project_dir, {"job.json": text.encode()})


def test_discovery_imports_the_intact_document_and_reports_the_tampered_ones() -> None:
    setup = register((MEMBER,))
    member, profile = setup.members[0], setup.profile
    session = setup.session(member)
    jobs = [JobFactory(owner=member, profile=profile, recipe_name=RECIPE, submitted=True) for _ in range(3)]
    intact, digits, broken = jobs
    for root in session.roots:  # nothing of an earlier run
        session.run(["find", root, "-mindepth", "1", "-delete"], check=True)
    write_document(session, intact, job_json_bytes(intact).decode())
    tampered = {**json.loads(job_json_bytes(digits)), "slurm_job_id": "\u0664\u0662"}  # Arabic-Indic 42
    write_document(session, digits, json.dumps(tampered))
    write_document(session, broken, job_json_bytes(broken).decode()[:200])  # cut in half
    Job.objects.all().delete()

    first = discover_jobs(user_id=member.pk, profile_id=profile.pk)

    assert {key: first[key] for key in ("found", "imported", "known", "refused")} == {
        "found": 3,
        "imported": 1,
        "known": 0,
        "refused": 2,
    }
    assert sorted((refusal["path"], refusal["code"]) for refusal in first["refusals"]) == sorted(
        [
            (f"{digits.project_dir}/job.json", "JOB_JSON_FIELD_INVALID"),
            (f"{broken.project_dir}/job.json", "JOB_JSON_MALFORMED"),
        ]
    )
    assert list(Job.objects.values_list("uuid", "state")) == [(intact.uuid, JobState.PENDING)]

    again = discover_jobs(user_id=member.pk, profile_id=profile.pk)
    report = sync_member_jobs(owner_id=member.pk, profile_id=profile.pk)

    assert (again["imported"], again["known"], again["refused"]) == (0, 1, 2)
    assert (report.jobs, report.coalesced) == (1, False)


@pytest.mark.django_db(transaction=True)  # the worker submits and finishes the steps
def test_discovery_finds_a_pipeline_runs_step_documents_and_re_creates_the_run(celery_worker) -> None:
    setup = register((PIPELINE_MEMBER,))
    member, profile = setup.members[0], setup.profile
    session, client = setup.session(member), setup.client(member)
    for root in session.roots:  # nothing of an earlier run
        session.run(["find", root, "-mindepth", "1", "-delete"], check=True)
    pipeline = services.create_pipeline(
        user=member,
        request=services.PipelineRequest(
            protocol_id=two_stage_protocol().pk,
            cluster_id=profile.pk,
            recipe=RECIPE,
            title="water run",
            values={**WATER, **QUICK, **CELL, "run_steps": 100},
            stage_values={},
            resources=RESOURCES,  # the debug partition, 10 minutes
        ),
    )
    first, second = pipeline.steps.order_by("position")
    upload_inputs(client, first.pk)
    wait_for(lambda: job(client, first.pk)["state"] == "READY", timeout_s=90, what="the run's inputs READY")
    services.request_submit_pipeline(user=member, pipeline_id=pipeline.pk)
    for step in (first, second):
        assert wait_for_state(client, step.pk, {"COMPLETED", "FAILED", "CANCELLED"}, timeout_s=180)["state"] == (
            "COMPLETED"
        )
        wait_until_finished(client, step.pk)
    steps = list(Job.objects.filter(pipeline=pipeline).order_by("position"))

    names = session.run(["ls", "--", pipeline.project_dir], check=True).stdout.split()
    assert {"min.json", "min.sbatch", "eq.json", "eq.sbatch"} <= set(names)
    assert "job.json" not in names  # the steps share the folder: each has its own document
    document = json.loads(session.run(["cat", "--", f"{pipeline.project_dir}/eq.json"], check=True).stdout)
    assert (document["schema_version"], document["uuid"], document["state"]) == (2, str(steps[1].uuid), "COMPLETED")
    assert {key: document["pipeline"][key] for key in ("uuid", "protocol", "position", "script_path")} == {
        "uuid": str(pipeline.uuid),
        "protocol": PROTOCOL_SLUG,
        "position": 2,
        "script_path": "eq.sbatch",
    }
    Pipeline.objects.filter(pk=pipeline.pk).delete()  # its steps with it, as after a lost database
    assert not Job.objects.filter(owner=member).exists()

    report = discover_jobs(user_id=member.pk, profile_id=profile.pk)

    assert {key: report[key] for key in ("found", "imported", "known", "refused", "without_pipeline")} == {
        "found": 2,
        "imported": 2,
        "known": 0,
        "refused": 0,
        "without_pipeline": 0,
    }
    again = Pipeline.objects.get(uuid=pipeline.uuid)
    assert (again.owner, again.protocol.slug, again.project_dir, again.title) == (
        member,
        PROTOCOL_SLUG,
        pipeline.project_dir,
        "water run",
    )
    imported = current_steps(again)
    assert [(s.uuid, s.position, s.stage_name, s.state, s.slurm_job_id, s.script_path) for s in imported] == [
        (s.uuid, s.position, s.stage_name, JobState.COMPLETED, s.slurm_job_id, s.script_path) for s in steps
    ]
    assert pipeline_status(imported).state == "COMPLETED"
    assert discover_jobs(user_id=member.pk, profile_id=profile.pk)["known"] == 2
