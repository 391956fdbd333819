"""Discovery imports a job.json only if every field passes the rules a new job passes; a refused one writes nothing.

Each case is a document the portal wrote for a real job (its row then removed, as after a lost database),
with one field changed the way a careless or hostile member could change the file on the cluster; the same for
a pipeline step's `<step>.json` (schema version 2: its run and sweep point), and version-1 documents, written
before pipelines, still read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from clusters.slurm import validate_job_id
from jobs.metadata import job_json_bytes
from jobs.models import Job, JobEvent, JobState, Pipeline, Sweep, SweepPoint
from jobs.services import discovery
from portal.errors import PortalError
from tests.factories import JobFactory
from tests.jobs.pipeline_documents import new_pipeline, queue_steps, step_documents, two_stage_protocol
from tests.jobs.unit_jobs import unit_profile

pytestmark = pytest.mark.django_db

Document = dict[str, Any]


@pytest.fixture
def profile(db):
    return unit_profile()


@pytest.fixture
def written(member, profile) -> tuple[str, Document]:
    """(path, document) of a queued job's job.json, the job itself gone from the database."""
    job = JobFactory(owner=member, profile=profile, submitted=True, slurm_job_id="42")
    document = json.loads(job_json_bytes(job))
    Job.objects.filter(pk=job.pk).delete()
    return f"{job.project_dir}/job.json", document


def changed(**fields: Any) -> Callable[[Document], Any]:
    return lambda document: {**document, **fields}


def resources(**fields: Any) -> Callable[[Document], Any]:
    return lambda document: {**document, "resources": {**document["resources"], **fields}}


def values(**fields: Any) -> Callable[[Document], Any]:
    return lambda document: {**document, "values": {**document["values"], **fields}}


def without(name: str) -> Callable[[Document], Any]:
    return lambda document: {key: value for key, value in document.items() if key != name}


def version_1(document: Document) -> Document:
    """The document as the portal wrote it before pipelines and sweeps (schema version 1)."""
    return {key: value for key, value in document.items() if key not in ("pipeline", "sweep")} | {"schema_version": 1}


def scratch_of_another_job(document: Document) -> Document:
    return {**document, "scratch_dir": document["scratch_dir"].rsplit("-", 1)[0] + "-00000000"}


def other_job_folder(document: Document) -> Document:
    name = document["project_dir"].rsplit("/", 1)[-1]
    return {**document, "project_dir": document["project_dir"].replace(name, "npt-equilibration-00000000")}


CASES: dict[str, tuple[Callable[[Document], Any] | str, str]] = {
    "not JSON": ("{not json", "JOB_JSON_MALFORMED"),
    "empty (unreadable)": ("", "JOB_JSON_MALFORMED"),
    "a list": ("[1, 2]", "JOB_JSON_MALFORMED"),
    "nested past the parser": ("[" * 100_000 + "]" * 100_000, "JOB_JSON_MALFORMED"),
    "another schema": (changed(schema="other/job"), "JOB_JSON_NOT_OURS"),
    "schema version 3": (changed(schema_version=3), "JOB_JSON_NOT_OURS"),
    "schema version true": (changed(schema_version=True), "JOB_JSON_NOT_OURS"),
    "schema version 2.0": (changed(schema_version=2.0), "JOB_JSON_NOT_OURS"),
    "schema version as text": (changed(schema_version="2"), "JOB_JSON_NOT_OURS"),
    "version 2 without its pipeline": (without("pipeline"), "JOB_JSON_FIELD_INVALID"),
    "version 2 without its sweep": (without("sweep"), "JOB_JSON_FIELD_INVALID"),
    "version 1 with a pipeline": (lambda d: {**version_1(d), "pipeline": None}, "JOB_JSON_FIELD_INVALID"),
    "a pipeline that is no object": (changed(pipeline=["uuid"]), "JOB_JSON_FIELD_INVALID"),
    "a sweep that is no object": (changed(sweep="temperatures"), "JOB_JSON_FIELD_INVALID"),
    "an unknown field": (changed(shell="rm -rf ~"), "JOB_JSON_FIELD_INVALID"),
    "a missing field": (without("scratch_dir"), "JOB_JSON_FIELD_INVALID"),
    "non-ASCII digits as SLURM id": (changed(slurm_job_id="\u0664\u0662"), "JOB_JSON_FIELD_INVALID"),
    "an 11-digit SLURM id": (changed(slurm_job_id="12345678901"), "JOB_JSON_FIELD_INVALID"),
    "an array task id": (changed(slurm_job_id="42_1"), "JOB_JSON_FIELD_INVALID"),
    "a SLURM id as a number": (changed(slurm_job_id=42), "JOB_JSON_FIELD_INVALID"),
    "a SLURM id with an option": (changed(slurm_job_id="--all"), "JOB_JSON_FIELD_INVALID"),
    "a bad uuid": (changed(uuid="not-a-uuid"), "JOB_JSON_FIELD_INVALID"),
    "a 201-character title": (changed(title="x" * 201), "JOB_JSON_FIELD_INVALID"),
    "an unknown state": (changed(state="EXPLODED"), "JOB_JSON_FIELD_INVALID"),
    "a time that is no time": (changed(submitted_at="yesterday"), "JOB_JSON_FIELD_INVALID"),
    "a time without a zone": (changed(submitted_at="2026-01-01T10:00:00"), "JOB_JSON_FIELD_INVALID"),
    "values that are no object": (changed(values=["temperature", 300]), "JOB_JSON_FIELD_INVALID"),
    "a resource as text": (resources(nodes="1"), "JOB_JSON_FIELD_INVALID"),
    "a resource as a boolean": (resources(gpus=False), "JOB_JSON_FIELD_INVALID"),
    "a huge resource": (resources(nodes=2**40), "JOB_JSON_FIELD_INVALID"),
    "an unknown resource": (resources(exclusive=True), "JOB_JSON_FIELD_INVALID"),
    "a PENDING job without an id": (changed(slurm_job_id=None), "JOB_JSON_INCONSISTENT"),
    "a DRAFT with an id": (changed(state="DRAFT"), "JOB_JSON_INCONSISTENT"),
    "an end before the start": (
        changed(started_at="2026-01-02T10:00:00+00:00", ended_at="2026-01-01T10:00:00+00:00"),
        "JOB_JSON_INCONSISTENT",
    ),
    "another cluster": (changed(cluster="elsewhere"), "JOB_JSON_OTHER_CLUSTER"),
    "another job's scratch folder": (scratch_of_another_job, "JOB_JSON_FOLDER_MISMATCH"),
    "the project folder as scratch": (lambda d: {**d, "scratch_dir": d["project_dir"]}, "JOB_JSON_FOLDER_MISMATCH"),
    "a scratch folder climbing out": (changed(scratch_dir="/scratch/alice_t/../../etc"), "JOB_JSON_FOLDER_MISMATCH"),
    "a scratch folder elsewhere": (changed(scratch_dir="/tmp/npt-equilibration-x"), "JOB_JSON_FOLDER_MISMATCH"),
    "another folder than its own": (other_job_folder, "JOB_JSON_FOLDER_MISMATCH"),
    "a template version the portal lacks": (
        lambda d: {**d, "template": {**d["template"], "version": 99}},
        "JOB_JSON_TEMPLATE_UNKNOWN",
    ),
    "a recipe the cluster lacks": (changed(recipe="gpu"), "RECIPE_NOT_FOUND"),
    "a value out of range": (values(temperature=5000), "VALUE_OUT_OF_RANGE"),
    "a variable the template lacks": (values(shell="x"), "VALUE_UNKNOWN_VARIABLE"),
    "shell in a file value": (values(structure="$(reboot).psf"), "FILE_NAME_INVALID"),
    "Tcl in a file value": (values(structure="[exec reboot].psf"), "FILE_NAME_INVALID"),
    "a negative resource": (resources(nodes=-1), "RESOURCE_INVALID"),
    "a walltime over the partition's": (resources(walltime_s=10 * 3600), "TIME_OVER_LIMIT"),
    "a partition the cluster lacks": (resources(partition="gpu"), "PARTITION_UNKNOWN"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_document_that_breaks_a_rule_is_refused_with_its_code_and_writes_nothing(
    case: str, member, profile, written
) -> None:
    path, document = written
    change, expected_code = CASES[case]
    text = change if isinstance(change, str) else json.dumps(change(document))
    jobs_before, events_before = Job.objects.count(), JobEvent.objects.count()

    with pytest.raises(PortalError) as refused:
        discovery.import_job_document(member, profile, path, text)

    assert refused.value.code == expected_code
    assert (Job.objects.count(), JobEvent.objects.count()) == (jobs_before, events_before)


def test_a_document_read_from_another_folder_is_refused(member, profile, written) -> None:
    path, document = written

    copy = path.replace("/job.json", "-copy/job.json")

    with pytest.raises(PortalError) as refused:
        discovery.import_job_document(member, profile, copy, json.dumps(document))

    assert refused.value.code == "JOB_JSON_FOLDER_MISMATCH"


def test_a_slurm_id_another_job_holds_is_refused(member, profile, written) -> None:
    path, document = written
    JobFactory(owner=member, profile=profile, submitted=True, slurm_job_id="42")

    with pytest.raises(PortalError) as refused:
        discovery.import_job_document(member, profile, path, json.dumps(document))

    assert refused.value.code == "JOB_JSON_SLURM_ID_TAKEN"


def test_an_intact_document_imports_rendered_as_a_new_job_is(member, profile, written) -> None:
    path, document = written

    assert discovery.import_job_document(member, profile, path, json.dumps(document)).outcome == "imported"

    job = Job.objects.get(uuid=document["uuid"])
    assert (job.state, job.slurm_job_id, job.project_dir, job.scratch_dir) == (
        JobState.PENDING,
        "42",
        document["project_dir"],
        document["scratch_dir"],
    )
    assert validate_job_id(job.slurm_job_id) == "42"  # what the status sync checks before each squeue
    assert f"#SBATCH --comment=np:{job.uuid}" in job.batch_script
    assert "structure          water.psf" in job.config_text
    assert job.values == document["values"]
    assert list(job.events.values_list("kind", "new_state")) == [("IMPORTED", "PENDING")]


def test_a_job_caught_submitting_with_an_id_is_imported_pending_so_the_sync_asks_slurm(
    member, profile, written
) -> None:
    path, document = written

    discovery.import_job_document(member, profile, path, json.dumps({**document, "state": "SUBMITTING"}))

    assert Job.objects.get(uuid=document["uuid"]).state == JobState.PENDING


def test_a_version_1_document_is_still_read_and_imported(member, profile, written) -> None:
    path, document = written

    result = discovery.import_job_document(member, profile, path, json.dumps(version_1(document)))

    assert (result.outcome, result.left_out) == ("imported", None)
    job = Job.objects.get(uuid=document["uuid"])
    assert (job.state, job.slurm_job_id, job.pipeline, job.metadata_path) == (JobState.PENDING, "42", None, "job.json")


# ------------------------------------------------------------------ a pipeline step's document (version 2)


@pytest.fixture
def step_written(member, profile) -> tuple[str, Document]:
    """(path, document) of the second step of a queued two-step run (`eq.json`), a sweep's point; rows gone."""
    protocol = two_stage_protocol()
    pipeline = new_pipeline(member, profile, protocol)
    sweep = Sweep.objects.create(owner=member, profile=profile, protocol=protocol, title="seeds", mode="replicas")
    SweepPoint.objects.create(sweep=sweep, index=0, values={"seed": 1}, pipeline=pipeline)
    path, document = step_documents(queue_steps(pipeline))[1]
    Pipeline.objects.filter(pk=pipeline.pk).delete()
    Sweep.objects.filter(pk=sweep.pk).delete()
    return path, document


def step(**fields: Any) -> Callable[[Document], Any]:
    return lambda document: {**document, "pipeline": {**document["pipeline"], **fields}}


def sweep(**fields: Any) -> Callable[[Document], Any]:
    return lambda document: {**document, "sweep": {**document["sweep"], **fields}}


def step_without(name: str) -> Callable[[Document], Any]:
    return lambda d: {**d, "pipeline": {key: value for key, value in d["pipeline"].items() if key != name}}


def step_resources(**fields: Any) -> Callable[[Document], Any]:
    return step_via(lambda part: {**part, "resources": {**part["resources"], **fields}})


def step_via(change: Callable[[Document], Document]) -> Callable[[Document], Any]:
    return lambda document: {**document, "pipeline": change(document["pipeline"])}


def folder_of_template(document: Document) -> Document:
    """The run's folder named as a single job's would be (its template and the step's own uuid)."""
    name = document["project_dir"].rsplit("/", 1)[-1]
    own = f"npt-equilibration-{document['uuid'].replace('-', '')[:8]}"
    return {key: document[key].replace(name, own) if key.endswith("_dir") else document[key] for key in document}


STEP_CASES: dict[str, tuple[Callable[[Document], Any], str]] = {
    "position 0": (step(position=0), "JOB_JSON_FIELD_INVALID"),
    "a negative position": (step(position=-1), "JOB_JSON_FIELD_INVALID"),
    "a position past the steps a run may have": (step(position=201), "JOB_JSON_FIELD_INVALID"),
    "a position as text": (step(position="2"), "JOB_JSON_FIELD_INVALID"),
    "a position as a boolean": (step(position=True), "JOB_JSON_FIELD_INVALID"),
    "a stage position 0": (step(stage_position=0), "JOB_JSON_FIELD_INVALID"),
    "a bad run uuid": (step(uuid="not-a-uuid"), "JOB_JSON_FIELD_INVALID"),
    "a run uuid as a number": (step(uuid=42), "JOB_JSON_FIELD_INVALID"),
    "a 201-character run title": (step(title="x" * 201), "JOB_JSON_FIELD_INVALID"),
    "an empty run title": (step(title=""), "JOB_JSON_FIELD_INVALID"),
    "a 121-character stage name": (step(stage_name="x" * 121), "JOB_JSON_FIELD_INVALID"),
    "a protocol slug climbing out": (step(protocol="../etc"), "JOB_JSON_FIELD_INVALID"),
    "a 61-character protocol slug": (step(protocol="p" * 61), "JOB_JSON_FIELD_INVALID"),
    "a config path climbing out": (step(config_path="../eq.namd"), "JOB_JSON_FIELD_INVALID"),
    "an absolute config path": (step(config_path="/etc/eq.namd"), "JOB_JSON_FIELD_INVALID"),
    "a config path with a newline": (step(config_path="eq.namd\n"), "JOB_JSON_FIELD_INVALID"),
    "a config that is no .namd": (step(config_path="eq.conf"), "JOB_JSON_FIELD_INVALID"),
    "a 201-character config path": (step(config_path="a/" * 97 + "eq.namd"), "JOB_JSON_FIELD_INVALID"),
    "a script in a subfolder": (step(script_path="sub/eq.sbatch"), "JOB_JSON_FIELD_INVALID"),
    "a script that is no .sbatch": (step(script_path="eq.sh"), "JOB_JSON_FIELD_INVALID"),
    "a script with a shell character": (step(script_path="$(reboot).sbatch"), "JOB_JSON_FIELD_INVALID"),
    "per-stage values keyed by no position": (step(stage_values={"x": {}}), "JOB_JSON_FIELD_INVALID"),
    "per-stage values that are no object": (step(stage_values={"2": [1]}), "JOB_JSON_FIELD_INVALID"),
    "run values that are no object": (step(values=[1]), "JOB_JSON_FIELD_INVALID"),
    "a run resource as text": (step_resources(nodes="1"), "JOB_JSON_FIELD_INVALID"),
    "an unknown run resource": (step_resources(exclusive=True), "JOB_JSON_FIELD_INVALID"),
    "a run recipe of 101 characters": (step(recipe="r" * 101), "JOB_JSON_FIELD_INVALID"),
    "continue on timeout as text": (step(continue_on_timeout="yes"), "JOB_JSON_FIELD_INVALID"),
    "an unknown field in the run": (step(shell="rm -rf ~"), "JOB_JSON_FIELD_INVALID"),
    "a run without its script": (step_without("script_path"), "JOB_JSON_FIELD_INVALID"),
    "a bad sweep uuid": (sweep(uuid="not-a-uuid"), "JOB_JSON_FIELD_INVALID"),
    "a negative sweep index": (sweep(index=-1), "JOB_JSON_FIELD_INVALID"),
    "a sweep index as text": (sweep(index="0"), "JOB_JSON_FIELD_INVALID"),
    "an unknown sweep mode": (sweep(mode="zigzag"), "JOB_JSON_FIELD_INVALID"),
    "a sweep gate of 0": (sweep(max_running=0), "JOB_JSON_FIELD_INVALID"),
    "sweep axes that are no list": (sweep(axes={"seed": [1]}), "JOB_JSON_FIELD_INVALID"),
    "33 sweep axes": (sweep(axes=[{"name": f"v{i}", "values": [1]} for i in range(33)]), "JOB_JSON_FIELD_INVALID"),
    "point values that are no object": (sweep(values=[1]), "JOB_JSON_FIELD_INVALID"),
    "a 201-character sweep title": (sweep(title="x" * 201), "JOB_JSON_FIELD_INVALID"),
    "an unknown field in the sweep": (sweep(shell="x"), "JOB_JSON_FIELD_INVALID"),
    "a config and script named apart": (step(config_path="other.namd"), "JOB_JSON_INCONSISTENT"),
    "a config outside its template's folder": (
        step(config_path="namd/eq.namd", script_path="eq.sbatch"),
        "JOB_JSON_FOLDER_MISMATCH",
    ),
    "a step in a single job's folder": (folder_of_template, "JOB_JSON_FOLDER_MISMATCH"),
    "a step of another run's folder": (step(uuid="00000000-0000-4000-8000-000000000000"), "JOB_JSON_FOLDER_MISMATCH"),
    "a step of another protocol's folder": (step(protocol="min-equil-prod"), "JOB_JSON_FOLDER_MISMATCH"),
    "a step read from another step's document": (
        step(config_path="min.namd", script_path="min.sbatch"),
        "JOB_JSON_FOLDER_MISMATCH",
    ),
    "a step that names no run": (changed(pipeline=None), "JOB_JSON_FOLDER_MISMATCH"),
}


@pytest.mark.parametrize("case", sorted(STEP_CASES))
def test_a_step_document_that_breaks_a_rule_is_refused_with_its_code_and_writes_nothing(
    case: str, member, profile, step_written
) -> None:
    path, document = step_written
    change, expected_code = STEP_CASES[case]
    before = (Job.objects.count(), JobEvent.objects.count(), Pipeline.objects.count(), Sweep.objects.count())

    with pytest.raises(PortalError) as refused:
        discovery.import_job_document(member, profile, path, json.dumps(change(document)))

    assert refused.value.code == expected_code
    after = (Job.objects.count(), JobEvent.objects.count(), Pipeline.objects.count(), Sweep.objects.count())
    assert after == before


def test_an_intact_step_document_imports_with_its_run_and_sweep(member, profile, step_written) -> None:
    path, document = step_written

    result = discovery.import_job_document(member, profile, path, json.dumps(document))

    assert (result.outcome, result.left_out) == ("imported", None)
    job = Job.objects.get(uuid=document["uuid"])
    assert (job.pipeline.uuid.hex, job.position, job.metadata_path) == (
        document["pipeline"]["uuid"].replace("-", ""),
        2,
        "eq.json",
    )
    assert list(SweepPoint.objects.values_list("index", "pipeline__uuid")) == [(0, job.pipeline.uuid)]
