"""job.json v2 and discovery of pipeline runs and sweeps: what a step's or a sweep point's document carries, and
the rows discovery makes of it after the portal lost them (a run re-created with its steps, a sweep with its
points, a step of a protocol the member cannot run imported as a plain job and reported so)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from jobs import remote
from jobs.metadata import SCHEMA_VERSION, job_json_bytes, parse_job_document
from jobs.models import Job, JobState, Pipeline, Sweep, SweepPoint
from jobs.pipeline_steps import current_steps
from jobs.services import discovery
from templates_app.models import Protocol
from tests.factories import CredentialFactory, JobFactory
from tests.jobs.pipeline_documents import PROTOCOL_SLUG, new_pipeline, queue_steps, step_documents, two_stage_protocol
from tests.jobs.unit_jobs import unit_profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def profile(db):
    return unit_profile()


@pytest.fixture
def protocol(profile) -> Protocol:
    return two_stage_protocol()


@pytest.fixture
def queued_run(member, profile, protocol) -> tuple[Pipeline, list[Job]]:
    pipeline = new_pipeline(member, profile, protocol)
    return pipeline, queue_steps(pipeline)


def forget(*objects: Any) -> None:
    """The portal's rows gone, as after a lost database (the documents on the cluster stay)."""
    for thing in objects:
        type(thing).objects.filter(pk=thing.pk).delete()


def import_all(member, profile, documents: list[tuple[str, dict[str, Any]]]) -> discovery.DiscoveryReport:
    report = discovery.DiscoveryReport()
    discovery.import_folder_documents(member, profile, [(path, json.dumps(doc)) for path, doc in documents], report)
    return report


# ------------------------------------------------------------------ what the documents carry


def test_a_steps_document_names_its_run_and_is_written_beside_its_script(member, profile, queued_run, fake_cluster):
    pipeline, steps = queued_run
    CredentialFactory(user=member, profile=profile)
    session = fake_cluster.for_job(steps[0], acting_user_id=member.pk)
    remote.make_dirs(session, pipeline.project_dir)

    remote.write_metadata(session, *steps)

    assert [step.script_path for step in steps] == ["min.sbatch", "eq.sbatch"]
    directory, names = fake_cluster.written[-1]
    assert (directory, sorted(names)) == (pipeline.project_dir, ["eq.json", "min.json"])  # one write for both
    assert not fake_cluster.has_file(f"{pipeline.project_dir}/job.json")
    document = json.loads(fake_cluster.file(f"{pipeline.project_dir}/eq.json"))
    assert document["schema_version"] == SCHEMA_VERSION == 2
    assert document["uuid"] == str(steps[1].uuid)
    assert document["pipeline"] == {
        "uuid": str(pipeline.uuid),
        "title": "water run",
        "protocol": PROTOCOL_SLUG,
        "position": 2,
        "stage_position": 2,
        "stage_name": "equilibration",
        "config_path": "eq.namd",
        "script_path": "eq.sbatch",
        "values": pipeline.values,
        "stage_values": {"2": {"run_steps": 200}},
        "resources": pipeline.resources,
        "recipe": "cpu",
        "continue_on_timeout": True,
    }
    assert document["sweep"] is None


def test_a_single_jobs_document_names_no_run_and_no_sweep(member, profile) -> None:
    job = JobFactory(owner=member, profile=profile, submitted=True)

    document = json.loads(job_json_bytes(job))

    assert (job.metadata_path, document["pipeline"], document["sweep"]) == ("job.json", None, None)


def test_a_sweep_points_document_names_its_sweep_and_point(member, profile) -> None:
    job = JobFactory(owner=member, profile=profile, submitted=True)
    sweep = Sweep.objects.create(
        owner=member,
        profile=profile,
        template_version=job.template_version,
        title="temperatures",
        axes=[{"name": "temperature", "values": [300, 310]}],
        max_running=2,
    )
    SweepPoint.objects.create(sweep=sweep, index=1, values={"temperature": 310}, job=job)

    document = json.loads(job_json_bytes(Job.objects.get(pk=job.pk)))

    assert document["sweep"] == {
        "uuid": str(sweep.uuid),
        "title": "temperatures",
        "mode": "grid",
        "axes": [{"name": "temperature", "values": [300, 310]}],
        "max_running": 2,
        "index": 1,
        "values": {"temperature": 310},
    }


# ------------------------------------------------------------------ discovery: runs


def test_discovery_re_creates_the_run_with_its_steps(member, profile, protocol, queued_run) -> None:
    pipeline, steps = queued_run
    documents = step_documents(steps)
    before = Pipeline.objects.filter(pk=pipeline.pk).values().get()
    stages = [step.protocol_stage_id for step in steps]
    forget(pipeline)

    report = import_all(member, profile, list(reversed(documents)))

    assert report.counts == {"found": 0, "imported": 2, "known": 0, "refused": 0, "without_pipeline": 0}
    again = Pipeline.objects.get(uuid=pipeline.uuid)
    after = Pipeline.objects.filter(pk=again.pk).values().get()
    same = ("owner_id", "profile_id", "protocol_id", "title", "values", "stage_values", "resources", "recipe_name")
    assert {key: after[key] for key in same} == {key: before[key] for key in same}
    assert (after["continue_on_timeout"], after["project_dir"], after["scratch_dir"]) == (
        True,
        pipeline.project_dir,
        pipeline.scratch_dir,
    )
    imported = current_steps(again)
    assert [
        (s.uuid, s.position, s.stage_name, s.config_path, s.script_path, s.state, s.slurm_job_id) for s in imported
    ] == [
        (steps[0].uuid, 1, "minimization", "min.namd", "min.sbatch", JobState.PENDING, "500"),
        (steps[1].uuid, 2, "equilibration", "eq.namd", "eq.sbatch", JobState.PENDING, "501"),
    ]
    assert [s.protocol_stage_id for s in imported] == stages
    assert [s.continue_on_timeout for s in imported] == [True, True]
    assert imported[1].batch_script == steps[1].batch_script  # rendered again at its own config path
    assert imported[1].metadata_path == "eq.json"

    assert import_all(member, profile, documents).counts["known"] == 2


def test_a_continuation_imported_after_its_step_is_the_steps_current_job(member, profile, queued_run) -> None:
    pipeline, steps = queued_run
    (path, first), _ = step_documents(steps)
    folder = path.rpartition("/")[0]
    later = (parse_job_document(json.dumps(first)).created_at + timedelta(hours=1)).isoformat()
    continuation = {
        **first,
        "uuid": str(uuid.uuid4()),
        "parent_uuid": first["uuid"],
        "slurm_job_id": "600",
        "created_at": later,
        "pipeline": {**first["pipeline"], "config_path": "min-cont1.namd", "script_path": "min-cont1.sbatch"},
    }
    timed_out = {**first, "state": "TIMEOUT", "slurm_state": "TIMEOUT"}
    forget(pipeline)

    report = import_all(member, profile, [(f"{folder}/min-cont1.json", continuation), (path, timed_out)])

    assert (report.counts["imported"], report.counts["refused"]) == (2, 0)
    current = current_steps(Pipeline.objects.get(uuid=pipeline.uuid))[0]
    assert (str(current.uuid), current.script_path, current.parent.uuid) == (
        continuation["uuid"],
        "min-cont1.sbatch",
        steps[0].uuid,
    )


def test_a_step_of_a_protocol_the_member_cannot_run_is_imported_as_a_plain_job_and_reported(
    member, profile, protocol, queued_run
) -> None:
    pipeline, steps = queued_run
    documents = step_documents(steps)
    forget(pipeline)
    Protocol.objects.filter(pk=protocol.pk).update(is_retired=True)  # kept for past runs, offered to no member

    report = import_all(member, profile, documents)

    assert report.counts == {"found": 0, "imported": 2, "known": 0, "refused": 0, "without_pipeline": 2}
    assert [note["code"] for note in report.notes] == ["JOB_JSON_PROTOCOL_UNKNOWN"] * 2
    assert report.notes[0]["path"] == documents[0][0]
    assert not Pipeline.objects.exists()
    imported = Job.objects.get(uuid=steps[1].uuid)
    assert (imported.pipeline_id, imported.position, imported.config_path, imported.script_path) == (
        None,
        None,
        "eq.namd",
        "eq.sbatch",
    )


def test_a_run_uuid_of_another_members_run_is_refused(member, other_member, profile, protocol, queued_run) -> None:
    pipeline, steps = queued_run
    (path, document), _ = step_documents(steps)
    forget(pipeline)
    theirs = new_pipeline(other_member, profile, protocol)
    Pipeline.objects.filter(pk=theirs.pk).update(uuid=pipeline.uuid)

    report = import_all(member, profile, [(path, document)])

    assert [refusal["code"] for refusal in report.refusals] == ["JOB_JSON_PIPELINE_MISMATCH"]
    assert not Job.objects.filter(uuid=steps[0].uuid).exists()


# ------------------------------------------------------------------ discovery: sweeps


def test_discovery_re_creates_a_template_sweep_with_its_points(member, profile) -> None:
    jobs = [JobFactory(owner=member, profile=profile, submitted=True) for _ in range(2)]
    sweep = Sweep.objects.create(
        owner=member,
        profile=profile,
        template_version=jobs[0].template_version,
        title="temperatures",
        mode=Sweep.Mode.LIST,
        axes=[{"name": "temperature", "values": [300, 310]}],
    )
    for index, job in enumerate(jobs):
        SweepPoint.objects.create(sweep=sweep, index=index, values={"temperature": 300 + 10 * index}, job=job)
    documents = [(f"{job.project_dir}/job.json", json.loads(job_json_bytes(job))) for job in jobs]
    forget(*jobs, sweep)

    reports = [import_all(member, profile, [document]) for document in documents]

    assert [report.counts["imported"] for report in reports] == [1, 1]
    again = Sweep.objects.get(uuid=sweep.uuid)
    assert (again.owner, again.template_version, again.protocol, again.mode, again.axes, again.title) == (
        member,
        jobs[0].template_version,
        None,
        "list",
        [{"name": "temperature", "values": [300, 310]}],
        "temperatures",
    )
    assert list(again.points.values_list("index", "values", "job__uuid", "pipeline")) == [
        (0, {"temperature": 300}, jobs[0].uuid, None),
        (1, {"temperature": 310}, jobs[1].uuid, None),
    ]


def test_discovery_re_creates_a_protocol_sweeps_point_once_for_all_its_steps(
    member, profile, protocol, queued_run
) -> None:
    pipeline, steps = queued_run
    sweep = Sweep.objects.create(owner=member, profile=profile, protocol=protocol, title="replicas", mode="replicas")
    SweepPoint.objects.create(sweep=sweep, index=3, values={"seed": 3}, pipeline=pipeline)
    documents = step_documents(steps)
    assert {document["sweep"]["index"] for _, document in documents} == {3}
    forget(pipeline, sweep)

    report = import_all(member, profile, documents)

    assert report.counts["imported"] == 2
    point = SweepPoint.objects.get(sweep__uuid=sweep.uuid)
    assert (point.index, point.values, point.job, point.pipeline.uuid) == (3, {"seed": 3}, None, pipeline.uuid)
    assert point.sweep.protocol == protocol


def test_a_sweep_index_another_job_holds_is_refused(member, profile) -> None:
    jobs = [JobFactory(owner=member, profile=profile, submitted=True) for _ in range(2)]
    sweep = Sweep.objects.create(
        owner=member, profile=profile, template_version=jobs[0].template_version, title="temperatures"
    )
    SweepPoint.objects.create(sweep=sweep, index=0, values={"temperature": 300}, job=jobs[0])
    SweepPoint.objects.create(sweep=sweep, index=1, values={"temperature": 310}, job=jobs[1])
    path, document = f"{jobs[1].project_dir}/job.json", json.loads(job_json_bytes(jobs[1]))
    forget(jobs[1])

    claiming_zero = {**document, "sweep": {**document["sweep"], "index": 0}}
    report = import_all(member, profile, [(path, claiming_zero)])

    assert [refusal["code"] for refusal in report.refusals] == ["JOB_JSON_SWEEP_MISMATCH"]
    assert not Job.objects.filter(uuid=jobs[1].uuid).exists()


def test_a_sweep_uuid_of_another_members_sweep_is_refused(member, other_member, profile) -> None:
    job = JobFactory(owner=member, profile=profile, submitted=True)
    theirs = Sweep.objects.create(
        owner=other_member, profile=profile, template_version=job.template_version, title="theirs"
    )
    mine = Sweep.objects.create(owner=member, profile=profile, template_version=job.template_version, title="mine")
    SweepPoint.objects.create(sweep=mine, index=0, values={}, job=job)
    path, document = f"{job.project_dir}/job.json", json.loads(job_json_bytes(job))
    forget(job, mine)

    claiming_theirs = {**document, "sweep": {**document["sweep"], "uuid": str(theirs.uuid)}}
    report = import_all(member, profile, [(path, claiming_theirs)])

    assert [refusal["code"] for refusal in report.refusals] == ["JOB_JSON_SWEEP_MISMATCH"]
    assert not theirs.points.exists()


def test_the_documents_of_a_listing_are_job_json_and_steps_documents_beside_their_scripts() -> None:
    root = "/home/alice/namd-portal"
    listing = "".join(
        f"{path}\n"
        for path in (
            f"{root}/npt-equilibration-0a1b2c3d/job.json",
            f"{root}/npt-equilibration-0a1b2c3d/job.sbatch",
            f"{root}/min-then-eq-4e5f6a7b/min.sbatch",
            f"{root}/min-then-eq-4e5f6a7b/min.json",
            f"{root}/min-then-eq-4e5f6a7b/eq.sbatch",
            f"{root}/min-then-eq-4e5f6a7b/eq.json",
            f"{root}/min-then-eq-4e5f6a7b/analysis.json",  # no script beside it: not a step's document
            f"{root}/min-then-eq-4e5f6a7b/eq-cont1.sbatch",  # its document not written yet
            f"{root}/other/eq.json",  # a script of that name in another folder does not count
            "/elsewhere/x/job.json",  # outside the root
        )
    )

    assert remote.job_document_paths(listing, root) == [
        f"{root}/min-then-eq-4e5f6a7b/eq.json",
        f"{root}/min-then-eq-4e5f6a7b/min.json",
        f"{root}/npt-equilibration-0a1b2c3d/job.json",
    ]
