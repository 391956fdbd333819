"""Resumable chunked uploads (GET/PUT /api/v1/jobs/{id}/uploads/{name}) on real PostgreSQL, no cluster contact."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import Client, RequestFactory

from clusters.models import LaunchRecipe, Partition
from jobs import file_store, services
from jobs.models import InputFile, Job, JobState
from jobs.services import uploads
from portal.errors import InvalidInput
from templates_app.builtin import load_builtin_templates
from templates_app.models import Template
from tests.factories import ClusterProfileFactory
from tests.jobs.unit_jobs import FIXTURES, RESOURCES, VALUES

pytestmark = pytest.mark.django_db
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
CSRF_TOKEN = "t" * 32


@pytest.fixture
def job(member) -> Job:
    profile = ClusterProfileFactory(slug="unit", max_upload_bytes=MAX_UPLOAD_BYTES)
    Partition.objects.create(profile=profile, name="debug", is_default=True, max_walltime_s=3600, cores_per_node=2)
    LaunchRecipe.objects.create(profile=profile, name="cpu", kind="cpu", command="srun namd2 +p{cores} {config}")
    load_builtin_templates()
    request = services.JobRequest(
        template_id=Template.objects.get(slug="npt-equilibration").pk,
        cluster_id=profile.pk,
        recipe="cpu",
        title="water",
        values=VALUES,
        resources=RESOURCES,
    )
    return services.create_job(user=member, request=request)


def session_client(user) -> Client:
    """A browser's session with CSRF enforced: upload.js sends the token in X-CSRFToken."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.cookies["csrftoken"] = CSRF_TOKEN
    return client


def url(job: Job, name: str) -> str:
    return f"/api/v1/jobs/{job.pk}/uploads/{name}"


def put(client: Client, job: Job, name: str, data: bytes, content_range: str | None):
    headers = {"HTTP_X_CSRFTOKEN": CSRF_TOKEN}
    if content_range is not None:
        headers["HTTP_CONTENT_RANGE"] = content_range
    return client.put(url(job, name), data=data, content_type="application/octet-stream", **headers)


def send(client: Client, job: Job, name: str, data: bytes, start: int, end: int):
    """PUT data[start:end] as one chunk of the whole `data`."""
    return put(client, job, name, data[start:end], f"bytes {start}-{end - 1}/{len(data)}")


def error(response) -> dict:
    return response.json()["error"]


def uploads_dir(job: Job) -> Path:
    return file_store.upload_path(job.uuid, "x").parent


def test_a_file_sent_in_three_chunks_becomes_an_input_with_its_size_and_sha256(member, job) -> None:
    client = session_client(member)
    psf = (FIXTURES / "water.psf").read_bytes()
    first, second = 200, 400
    responses = [send(client, job, "water.psf", psf, 0, first), send(client, job, "water.psf", psf, first, second)]
    assert [(r.status_code, r.json()["received"]) for r in responses] == [(200, first), (200, second)]
    last = send(client, job, "water.psf", psf, second, len(psf))
    assert last.status_code == 202
    body = last.json()
    assert (body["name"], body["role"], body["size_bytes"], body["atom_count"]) == (
        "water.psf",
        "structure",
        len(psf),
        3,
    )
    assert body["sha256"] == hashlib.sha256(psf).hexdigest()
    stored = InputFile.objects.get(job=job, name="water.psf")
    assert (stored.state, stored.sha256) == (InputFile.State.RECEIVED, hashlib.sha256(psf).hexdigest())
    assert Path(stored.staged_path).read_bytes() == psf
    assert Job.objects.get(pk=job.pk).state == JobState.UPLOADING
    assert not file_store.partial_path(job.uuid, "water.psf", len(psf)).exists()
    status = client.get(url(job, "water.psf"), {"size": len(psf)}).json()
    assert status == {"name": "water.psf", "size": len(psf), "received": 0, "max_bytes": MAX_UPLOAD_BYTES}


def test_an_interrupted_upload_resumes_from_what_the_portal_received(member, job) -> None:
    data = bytes(range(256)) * 40
    client = session_client(member)
    assert send(client, job, "extra.dat", data, 0, 4000).status_code == 200
    # A reload: a new page asks how far the same (name, size) got, under the name the client had.
    status = session_client(member).get(url(job, "my extra.dat"), {"size": len(data)})
    assert status.json() == {"name": "my_extra.dat", "size": len(data), "received": 0, "max_bytes": MAX_UPLOAD_BYTES}
    status = session_client(member).get(url(job, "extra.dat"), {"size": len(data)})
    assert status.json()["received"] == 4000
    done = send(session_client(member), job, "extra.dat", data, 4000, len(data))
    assert done.status_code == 202
    assert done.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_chunk_cut_off_midway_keeps_what_arrived_for_the_resume(member, job) -> None:
    data = b"x" * (200 * 1024)

    class CutOff:
        """A request stream whose client goes away after 128 KiB."""

        def __init__(self) -> None:
            self.sent = 0

        def read(self, size: int) -> bytes:
            if self.sent >= 128 * 1024:
                raise OSError("connection reset")
            self.sent += size
            return data[self.sent - size : self.sent]

    with pytest.raises(InvalidInput) as cut:
        uploads.receive_chunk(
            user=member,
            job_id=job.pk,
            name="extra.dat",
            content_range=f"bytes 0-{len(data) - 1}/{len(data)}",
            content_length=len(data),
            body=CutOff(),
        )
    assert (cut.value.code, cut.value.http_status) == ("CHUNK_INCOMPLETE", 400)
    status = uploads.upload_status(user=member, job_id=job.pk, name="extra.dat", size_bytes=len(data))
    assert status.received == 128 * 1024
    done = send(session_client(member), job, "extra.dat", data, status.received, len(data))
    assert done.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_chunk_at_the_wrong_offset_is_refused_with_what_was_received(member, job) -> None:
    client = session_client(member)
    data = b"y" * 1000
    assert send(client, job, "extra.dat", data, 0, 300).status_code == 200
    for start, end in ((600, 1000), (0, 300)):  # a gap, and a repeat of the first chunk
        refused = send(client, job, "extra.dat", data, start, end)
        assert refused.status_code == 409
        assert (error(refused)["code"], error(refused)["details"]["received"]) == ("UPLOAD_OFFSET_MISMATCH", 300)
    assert file_store.partial_path(job.uuid, "extra.dat", 1000).stat().st_size == 300
    never_started = send(client, job, "other.dat", data, 300, 600)
    assert (never_started.status_code, error(never_started)["details"]["received"]) == (409, 0)
    assert not file_store.partial_path(job.uuid, "other.dat", 1000).exists()


def test_a_file_above_the_cluster_limit_is_refused_before_any_byte(member, job) -> None:
    client = session_client(member)
    too_big = MAX_UPLOAD_BYTES + 1
    asked = client.get(url(job, "big.dat"), {"size": too_big})
    assert (asked.status_code, error(asked)["code"]) == (413, "FILE_TOO_LARGE")
    assert error(asked)["details"]["max_bytes"] == MAX_UPLOAD_BYTES
    sent = put(client, job, "big.dat", b"z" * 10, f"bytes 0-9/{too_big}")
    assert (sent.status_code, error(sent)["code"]) == (413, "FILE_TOO_LARGE")
    assert not uploads_dir(job).exists()


def test_another_member_gets_404_and_nothing_is_written(member, other_member, job) -> None:
    client = session_client(other_member)
    asked = client.get(url(job, "water.psf"), {"size": 10})
    sent = put(client, job, "water.psf", b"0123456789", "bytes 0-9/10")
    assert [(r.status_code, error(r)["code"]) for r in (asked, sent)] == [(404, "JOB_NOT_FOUND")] * 2
    assert not uploads_dir(job).exists()
    assert not InputFile.objects.filter(job=job).exists()


def test_a_submitted_job_takes_no_upload(member, job) -> None:
    Job.objects.filter(pk=job.pk).update(state=JobState.PENDING)
    client = session_client(member)
    sent = put(client, job, "water.psf", b"0123456789", "bytes 0-9/10")
    asked = client.get(url(job, "water.psf"), {"size": 10})
    assert [(r.status_code, error(r)["code"]) for r in (sent, asked)] == [(409, "JOB_NOT_EDITABLE")] * 2
    assert not uploads_dir(job).exists()


@pytest.mark.parametrize(
    ("content_range", "body", "code"),
    [
        (None, b"0123456789", "CONTENT_RANGE_INVALID"),
        ("bytes=0-9/10", b"0123456789", "CONTENT_RANGE_INVALID"),
        ("bytes 5-4/10", b"", "CONTENT_RANGE_INVALID"),
        ("bytes 0-10/10", b"0123456789", "CONTENT_RANGE_INVALID"),
        ("bytes 0-4/10", b"0123456789", "CHUNK_LENGTH_MISMATCH"),  # longer than declared
        ("bytes 0-9/10", b"01234", "CHUNK_LENGTH_MISMATCH"),
    ],
)
def test_a_bad_content_range_or_length_is_a_400_with_its_code(member, job, content_range, body, code) -> None:
    sent = put(session_client(member), job, "extra.dat", body, content_range)
    assert (sent.status_code, error(sent)["code"]) == (400, code)
    assert not uploads_dir(job).exists()


def test_a_chunk_above_the_cap_is_refused(member, job) -> None:
    start = 0
    end = uploads.MAX_CHUNK_BYTES  # one byte more than the cap
    sent = put(session_client(member), job, "extra.dat", b"", f"bytes {start}-{end}/{MAX_UPLOAD_BYTES}")
    assert (sent.status_code, error(sent)["code"]) == (413, "CHUNK_TOO_LARGE")


def test_a_chunk_streams_past_the_in_memory_request_limit(member, job, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    chunk = b"m" * (2 * 1024 * 1024)
    # The limit is in force: reading the body whole would be refused.
    with pytest.raises(RequestDataTooBig):
        _ = RequestFactory().put(url(job, "big.dat"), data=chunk, content_type="application/octet-stream").body
    sent = send(session_client(member), job, "big.dat", chunk + b"tail", 0, len(chunk))
    assert (sent.status_code, sent.json()["received"]) == (200, len(chunk))
    assert file_store.partial_path(job.uuid, "big.dat", len(chunk) + 4).stat().st_size == len(chunk)
