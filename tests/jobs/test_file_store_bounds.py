"""The portal's file store kept bounded: download size cap, per-member quota, shared copies, expiry, and upload
bodies checked before they are written. Real PostgreSQL and disk; the cluster is the fake member session."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from jobs import file_store, services
from jobs.models import InputFile, Job, StagedDownload
from portal.celery import app
from tests.factories import InputFileFactory, JobFactory
from tests.jobs.test_resumable_uploads import error, put, session_client, uploads_dir, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(member) -> Job:
    """A member's DRAFT job: it takes uploads."""
    return JobFactory(owner=member)


@pytest.fixture
def finished(credential, fake_cluster) -> Job:
    job = JobFactory(owner=credential.user, profile=credential.profile, completed=True)
    fake_cluster.remote.make_dir(job.project_dir)
    return job


def stage(job: Job, relpath: str) -> StagedDownload:
    download, _ = services.request_download(user=job.owner, job_id=job.pk, relpath=relpath)
    services.fetch_download(download_id=download.pk, acting_user_id=job.owner_id)
    return StagedDownload.objects.get(pk=download.pk)


def downloads_dir(job: Job) -> Path:
    return file_store.download_path(job.uuid, 0, "x").parent.parent


def staged_files(job: Job) -> list[Path]:
    return sorted(p for p in downloads_dir(job).rglob("*") if p.is_file()) if downloads_dir(job).exists() else []


# ------------------------------------------------------------------------------------------ downloads


def test_a_file_over_the_per_file_cap_is_refused_before_any_copy(finished, fake_cluster, settings) -> None:
    settings.DOWNLOAD_MAX_BYTES = 100
    fake_cluster.put(f"{finished.project_dir}/out.dcd", b"x" * 101)

    download = stage(finished, "out.dcd")

    assert (download.state, download.error_code) == (StagedDownload.State.FAILED, "DOWNLOAD_TOO_LARGE")
    assert fake_cluster.ran("download") == []
    assert staged_files(finished) == []


def test_a_file_of_exactly_the_cap_is_fetched(finished, fake_cluster, settings) -> None:
    settings.DOWNLOAD_MAX_BYTES = 100
    fake_cluster.put(f"{finished.project_dir}/out.dcd", b"x" * 100)

    download = stage(finished, "out.dcd")

    assert (download.state, download.size_bytes) == (StagedDownload.State.READY, 100)
    assert Path(download.local_path).read_bytes() == b"x" * 100


def test_a_folder_is_no_download(finished, fake_cluster) -> None:
    fake_cluster.remote.make_dir(f"{finished.project_dir}/output")

    download = stage(finished, "output")

    assert (download.state, download.error_code) == (StagedDownload.State.FAILED, "DOWNLOAD_NOT_A_FILE")
    assert fake_cluster.ran("download") == []


def test_a_download_past_the_members_quota_is_refused(finished, fake_cluster, settings) -> None:
    settings.STORAGE_QUOTA_BYTES = 1000
    InputFileFactory(job=JobFactory(owner=finished.owner), content=b"p" * 600)  # an upload waiting to be copied
    fake_cluster.put(f"{finished.project_dir}/a.log", b"a" * 300)
    fake_cluster.put(f"{finished.project_dir}/b.log", b"b" * 300)

    fits = stage(finished, "a.log")
    refused = stage(finished, "b.log")

    assert (fits.state, refused.state) == (StagedDownload.State.READY, StagedDownload.State.FAILED)
    assert (refused.error_code, refused.size_bytes) == ("STORAGE_QUOTA_EXCEEDED", 0)
    assert [argv[-1] for argv in fake_cluster.ran("download")] == [f"{finished.project_dir}/a.log"]


def test_an_unchanged_file_is_shared_and_a_changed_one_copied_again(finished, fake_cluster, settings) -> None:
    settings.STORAGE_QUOTA_BYTES = 150  # the shared copy counts once
    path = f"{finished.project_dir}/out.log"
    fake_cluster.put(path, b"1" * 100)

    first, second = stage(finished, "out.log"), stage(finished, "out.log")
    fake_cluster.remote.files[path].mtime += 1  # rewritten in place, same size
    settings.STORAGE_QUOTA_BYTES = 250
    third = stage(finished, "out.log")

    assert [d.state for d in (first, second, third)] == [StagedDownload.State.READY] * 3
    assert second.local_path == first.local_path != third.local_path
    assert len(fake_cluster.ran("download")) == 2


def test_a_download_being_fetched_is_returned_instead_of_a_second_one(finished) -> None:
    first, first_task = services.request_download(user=finished.owner, job_id=finished.pk, relpath="out.log")
    again, again_task = services.request_download(user=finished.owner, job_id=finished.pk, relpath="./out.log")

    assert again.pk == first.pk
    assert (first_task != "", again_task) == (True, "")
    assert StagedDownload.objects.filter(job=finished).count() == 1


# ------------------------------------------------------------------------------------------ expiry


def test_expiry_removes_old_downloads_and_abandoned_partial_uploads(finished, fake_cluster, settings) -> None:
    settings.STAGED_DOWNLOAD_TTL_HOURS = 1
    settings.UPLOAD_PART_TTL_HOURS = 1
    fake_cluster.put(f"{finished.project_dir}/out.log", b"log")
    old, shared_young = stage(finished, "out.log"), stage(finished, "out.log")
    gone = stage(finished, "out.log")
    fake_cluster.put(f"{finished.project_dir}/other.log", b"other")
    alone = stage(finished, "other.log")
    hours_ago = timezone.now() - timedelta(hours=2)
    StagedDownload.objects.filter(pk__in=[old.pk, alone.pk, gone.pk]).update(created_at=hours_ago)
    StagedDownload.objects.filter(pk=gone.pk).update(state=StagedDownload.State.FAILED, local_path="")
    draft = JobFactory(owner=finished.owner, profile=finished.profile)
    abandoned = file_store.partial_path(draft.uuid, "big.dat", 1000)
    recent = file_store.partial_path(draft.uuid, "new.dat", 1000)
    abandoned.parent.mkdir(parents=True)
    abandoned.write_bytes(b"a" * 10)
    recent.write_bytes(b"r" * 10)
    two_hours_ago_s = time.time() - 7200
    os.utime(abandoned, (two_hours_ago_s, two_hours_ago_s))

    counts = services.expire_staged_files()

    assert counts == {"downloads": 3, "download_files": 1, "partial_uploads": 1}
    assert list(StagedDownload.objects.filter(job=finished).values_list("pk", flat=True)) == [shared_young.pk]
    assert Path(shared_young.local_path).is_file()  # the copy it shares with an expired one stays
    assert not Path(alone.local_path).exists()
    assert not Path(alone.local_path).parent.exists()
    assert (abandoned.exists(), recent.exists()) == (False, True)


def test_the_expiry_runs_on_the_beat() -> None:
    app.loader.import_default_modules()  # what a worker does at start: autodiscover the tasks modules
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "jobs.tasks.expire_staged_files_task" in scheduled
    assert "jobs.tasks.expire_staged_files_task" in app.tasks


# ------------------------------------------------------------------------------------------ uploads


def test_a_resumable_upload_past_the_quota_is_refused_before_its_first_byte(member, job, settings) -> None:
    settings.STORAGE_QUOTA_BYTES = 1000
    InputFileFactory(job=JobFactory(owner=member), content=b"p" * 600)
    client = session_client(member)

    asked = client.get(url(job, "big.dat"), {"size": 401})
    sent = put(client, job, "big.dat", b"z" * 10, "bytes 0-9/401")
    fits = put(client, job, "fits.dat", b"z" * 10, "bytes 0-9/400")
    other = put(client, job, "other.dat", b"z" * 10, "bytes 0-9/10")  # the 400 reserved by fits.dat count

    assert [(r.status_code, error(r)["code"]) for r in (asked, sent, other)] == [(413, "STORAGE_QUOTA_EXCEEDED")] * 3
    assert error(sent)["details"] == {"used_bytes": 600, "adding_bytes": 401, "quota_bytes": 1000}
    assert fits.status_code == 200
    assert sorted(p.name for p in uploads_dir(job).rglob("*.part")) == ["fits.dat.400.part"]


def test_a_one_shot_upload_is_checked_by_its_declared_length_before_it_is_read(member, job, settings) -> None:
    settings.STORAGE_QUOTA_BYTES = 1000
    client = Client()
    client.force_login(member)

    refused = client.post(f"/api/v1/jobs/{job.pk}/inputs", {"file": SimpleUploadedFile("big.prm", b"x" * 2000)})
    accepted = client.post(f"/api/v1/jobs/{job.pk}/inputs", {"file": SimpleUploadedFile("extra.prm", b"* prm\nEND\n")})
    missing = client.post(f"/api/v1/jobs/{job.pk}/inputs", {"other": "x"})

    assert (refused.status_code, error(refused)["code"]) == (413, "STORAGE_QUOTA_EXCEEDED")
    assert accepted.status_code == 202
    assert (missing.status_code, error(missing)["code"]) == (422, "FILE_FIELD_MISSING")
    assert list(InputFile.objects.filter(job=job).values_list("name", flat=True)) == ["extra.prm"]


def test_a_one_shot_upload_without_a_length_is_refused(member, job) -> None:
    client = Client()
    client.force_login(member)

    response = client.generic(
        "POST", f"/api/v1/jobs/{job.pk}/inputs", b"", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH=""
    )

    assert (response.status_code, error(response)["code"]) == (400, "CONTENT_LENGTH_REQUIRED")
