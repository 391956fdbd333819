"""The bad-input corpus: what an attacker or a careless member sends through the JSON API, and what comes back.

One table: each case is a request by a real member on their own job (real PostgreSQL rows, the real file
store), its expected HTTP status and stable code, and after it the job, its inputs, events and downloads are
as they were and no staged file is left behind. Nothing here reaches a cluster: the requests that would enqueue
work are refused before they do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from jobs.models import InputFile, Job, JobEvent, StagedDownload
from templates_app.models import Template
from tests.jobs.unit_jobs import FIXTURES, VALUES, new_job, unit_profile

pytestmark = pytest.mark.django_db

UPLOAD_LIMIT = 10_000  # unit_profile's max_upload_bytes
PSF = (FIXTURES / "water.psf").read_bytes()
PDB = (FIXTURES / "water.pdb").read_bytes()


@dataclass(frozen=True)
class Case:
    method: str  # "create", "values", "put_upload", "post_input", "download", "discover"
    payload: Any = None  # the JSON body, or for uploads the name
    content: bytes = b"0123456789"
    status: int = 422
    code: str = "INVALID_INPUT"
    extra: dict[str, Any] = field(default_factory=dict)


def create_body(profile_id: int, **overrides: Any) -> dict[str, Any]:
    body = {
        "template_id": Template.objects.get(slug="npt-equilibration").pk,
        "cluster_id": profile_id,
        "recipe": "cpu",
        "title": "water",
        "values": dict(VALUES),
        "resources": {"partition": "debug", "walltime_s": 600},
    }
    return {**body, **overrides}


def resources(**fields: Any) -> Callable[[int], dict[str, Any]]:
    return lambda profile_id: create_body(profile_id, resources={"partition": "debug", "walltime_s": 600, **fields})


def values(**fields: Any) -> Callable[[int], dict[str, Any]]:
    return lambda profile_id: create_body(profile_id, values={**VALUES, **fields})


def body(**fields: Any) -> Callable[[int], dict[str, Any]]:
    return lambda profile_id: create_body(profile_id, **fields)


CASES: dict[str, Case] = {
    # ---- path traversal and odd names in upload names (the resumable upload's URL) and download paths
    "upload ../": Case("put_upload", "../escape.psf", code="INPUT_PATH_INVALID"),
    "upload absolute": Case("put_upload", "/etc/passwd", code="INPUT_PATH_INVALID"),
    "upload a/../../b": Case("put_upload", "a/../../b.psf", code="INPUT_PATH_INVALID"),
    # odd characters in a name part are cleaned, never kept: accepted under the cleaned name
    "upload NUL": Case("put_upload", "water\x00.psf", code="INVALID_INPUT"),  # unstorable: refused before any view
    "upload newline": Case("put_upload", "water\n.psf", status=404, code="ENDPOINT_NOT_FOUND"),  # no API URL matches it
    "upload leading dash": Case("put_upload", "-rf.psf", status=202, code="", extra={"stored": "rf.psf"}),
    "upload the portal's job.json": Case("put_upload", "job.json", code="FILENAME_RESERVED"),
    "download ../": Case("download", {"path": "../other/out.coor"}, code="PATH_INVALID"),
    "download absolute": Case("download", {"path": "/etc/passwd"}, code="PATH_INVALID"),
    "download a/../../b": Case("download", {"path": "a/../../b"}, code="PATH_INVALID"),
    "download NUL": Case("download", {"path": "out\x00.coor"}, code="INVALID_INPUT"),
    "download newline": Case("download", {"path": "out\n.coor"}, code="PATH_INVALID"),
    "download leading dash": Case("download", {"path": "-rf"}, code="PATH_INVALID"),
    "download too long": Case("download", {"path": "a" * 401}),
    # ---- shell and Tcl metacharacters in template values
    "value $(...)": Case("create", values(structure="$(reboot).psf"), code="FILE_NAME_INVALID"),
    "value backticks": Case("create", values(structure="`reboot`.psf"), code="FILE_NAME_INVALID"),
    "value ;": Case("create", values(coordinates="water.pdb; reboot"), code="FILE_NAME_INVALID"),
    "value [exec ...]": Case("create", values(parameters="[exec reboot]"), code="FILE_NAME_INVALID"),
    "value {}": Case("create", values(structure="{water}.psf"), code="FILE_NAME_INVALID"),
    "value Tcl in a number": Case("create", values(temperature="[exec reboot]"), code="VALUE_WRONG_TYPE"),
    "values changed to Tcl": Case("values", {"values": {"structure": "[exec reboot].psf"}}, code="FILE_NAME_INVALID"),
    # ---- oversized values and files
    "title over 200": Case("create", body(title="x" * 201)),
    "value a huge text": Case("create", values(structure="a" * 100_000 + ".psf"), code="VALUE_TOO_LONG"),
    "upload over the cluster's limit": Case(
        "put_upload", "big.psf", content=b"x" * (UPLOAD_LIMIT + 1), status=413, code="FILE_TOO_LARGE"
    ),
    "upload declaring over the limit": Case(
        "put_upload", "big.psf", extra={"total": 10**12}, status=413, code="FILE_TOO_LARGE"
    ),
    # ---- malformed structure files and junk as a config
    "PSF cut in half": Case("post_input", "water.psf", content=PSF[: len(PSF) // 2], status=202, code=""),
    "PDB cut in half": Case("post_input", "water.pdb", content=PDB[: len(PDB) // 2], status=202, code=""),
    "binary junk as the config": Case("post_input", "job.namd", content=bytes(range(256)), code="FILENAME_RESERVED"),
    # ---- unknown fields, wrong types, huge integers, negative resources
    "unknown variable": Case("create", values(shell="rm -rf ~"), code="VALUE_UNKNOWN_VARIABLE"),
    "values not an object": Case("create", body(values=["structure", "x"])),
    "cluster id as text": Case("create", body(cluster_id="one")),
    "template id huge": Case("create", body(template_id=10**30), status=404, code="TEMPLATE_NOT_FOUND"),
    "cluster id huge": Case("create", body(cluster_id=10**30), status=404, code="CLUSTER_NOT_FOUND"),
    "nodes huge": Case("create", resources(nodes=10**30), code="SBATCH_VALUE_INVALID"),
    "walltime huge": Case("create", resources(walltime_s=10**30), code="TIME_OVER_LIMIT"),
    "memory huge": Case("create", resources(memory_mb=10**30), code="SBATCH_VALUE_INVALID"),
    "nodes negative": Case("create", resources(nodes=-1), code="RESOURCE_INVALID"),
    "gpus negative": Case("create", resources(gpus=-4), code="RESOURCE_INVALID"),
    "walltime negative": Case("create", resources(walltime_s=-60), code="RESOURCE_INVALID"),
    "nodes as text": Case("create", resources(nodes="all")),
    "not JSON": Case("create", "{not json", status=400, code="MALFORMED_REQUEST"),
    # ---- discovery (job.json and steps' documents read back): the request names only a cluster
    "discover: cluster id as text": Case("discover", {"cluster_id": "one"}),
    "discover: cluster id huge": Case("discover", {"cluster_id": 10**30}, status=404, code="CLUSTER_NOT_FOUND"),
    "discover: a cluster without my credential": Case("discover", "own", status=404, code="CREDENTIAL_NOT_FOUND"),
}


def snapshot(job: Job) -> dict[str, Any]:
    """Everything a refused request must leave as it was."""
    return {
        "job": Job.objects.filter(pk=job.pk).values().get(),
        "jobs": Job.objects.count(),
        "inputs": list(InputFile.objects.filter(job=job).values()),
        "events": JobEvent.objects.filter(job=job).count(),
        "downloads": StagedDownload.objects.count(),
    }


def stored_files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def send(client: Client, case: Case, job: Job) -> Any:
    base = f"/api/v1/jobs/{job.pk}"
    if case.method == "create":
        payload = case.payload if isinstance(case.payload, str) else json.dumps(case.payload(job.profile_id))
        return client.post("/api/v1/jobs", payload, content_type="application/json")
    if case.method == "values":
        return client.put(f"{base}/values", case.payload, content_type="application/json")
    if case.method == "discover":
        payload = {"cluster_id": job.profile_id} if case.payload == "own" else case.payload
        return client.post("/api/v1/jobs/discover", json.dumps(payload), content_type="application/json")
    if case.method == "download":
        return client.post(f"{base}/downloads", case.payload, content_type="application/json")
    if case.method == "post_input":
        return client.post(f"{base}/inputs", {"file": SimpleUploadedFile(case.payload, case.content)})
    total = case.extra.get("total", len(case.content))
    return client.put(
        f"{base}/uploads/{quote(case.payload, safe='/')}",
        case.content,
        content_type="application/octet-stream",
        HTTP_CONTENT_RANGE=f"bytes 0-{len(case.content) - 1}/{total}",
    )


@pytest.fixture
def member_job(member, settings) -> Job:
    return new_job(member, unit_profile())


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_is_refused_with_its_code_and_nothing_half_written(name: str, member, member_job, settings) -> None:
    case = CASES[name]
    client = Client()
    client.force_login(member)
    before, files_before = snapshot(member_job), stored_files(Path(settings.FILE_STORE))

    response = send(client, case, member_job)

    is_json = response.headers["Content-Type"].startswith("application/json")
    code = response.json().get("error", {}).get("code", "") if is_json else ""
    assert (response.status_code, code) == (case.status, case.code)
    if "stored" in case.extra:  # accepted under its cleaned name, and only that
        assert list(InputFile.objects.filter(job=member_job).values_list("name", flat=True)) == [case.extra["stored"]]
        return
    if case.status == 202:  # accepted: a damaged structure file is kept, with its problem shown on the input
        uploaded = InputFile.objects.get(job=member_job, name=case.payload)
        assert uploaded.problem_code != ""
        return
    assert snapshot(member_job) == before
    assert stored_files(Path(settings.FILE_STORE)) == files_before
