"""A job's inputs from an archive: unpacked safely into the job's tree, checked by role, one copy task."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from jobs import file_store
from jobs.models import InputFile, Job, JobEvent, JobState
from jobs.services import input_archives
from portal.errors import InvalidInput
from tests.jobs.unit_jobs import FIXTURES, new_job, unit_profile

pytestmark = pytest.mark.django_db
SYSTEM = {
    "water.psf": (FIXTURES / "water.psf").read_bytes(),
    "water.pdb": (FIXTURES / "water.pdb").read_bytes(),
    "par_water.prm": (FIXTURES / "par_water.prm").read_bytes(),
    "toppar/extra.str": b"* extra\n",
}


@pytest.fixture
def profile(db):
    return unit_profile()


def tgz(files: dict[str, bytes], *, top: str = "charmm-gui-1234567890", link: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(f"{top}/{link}")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(info)
    return buffer.getvalue()


def unpack(member, job: Job, name: str, data: bytes, django_capture_on_commit_callbacks) -> list:
    with django_capture_on_commit_callbacks() as received:
        input_archives.receive_input_archive(user=member, job_id=job.pk, name=name, chunks=[data])
    assert len(received) == 1  # the unpack task
    staged = next(file_store.upload_path(job.uuid, input_archives.ARCHIVES_DIR).iterdir())
    with django_capture_on_commit_callbacks() as copies:
        input_archives.unpack_input_archive(
            job_id=job.pk, archive_path=str(staged), kind=kind_of(name), acting_user_id=member.pk
        )
    assert not staged.exists()
    return copies


def kind_of(name: str) -> str:
    return "zip" if name.endswith(".zip") else "tar.gz"


def test_an_archive_becomes_the_jobs_input_tree_checked_by_role_and_copied_in_one_task(
    member, profile, django_capture_on_commit_callbacks
) -> None:
    job = new_job(member, profile)
    copies = unpack(member, job, "charmm-gui.tgz", tgz(SYSTEM), django_capture_on_commit_callbacks)
    inputs = {f.name: f for f in InputFile.objects.filter(job=job)}
    assert set(inputs) == set(SYSTEM)
    assert (inputs["water.psf"].role, inputs["water.psf"].atom_count) == ("structure", 3)
    assert inputs["toppar/extra.str"].state == InputFile.State.RECEIVED
    assert len(copies) == 1  # one copy task for the whole tree
    assert Job.objects.get(pk=job.pk).state == JobState.UPLOADING
    assert JobEvent.objects.filter(job=job, kind="ARCHIVE_UNPACKED").exists()


def test_a_zip_works_the_same(member, profile, django_capture_on_commit_callbacks) -> None:
    job = new_job(member, profile)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in SYSTEM.items():
            archive.writestr(f"system/{name}", data)
    unpack(member, job, "system.zip", buffer.getvalue(), django_capture_on_commit_callbacks)
    assert set(InputFile.objects.filter(job=job).values_list("name", flat=True)) == set(SYSTEM)


def test_a_hostile_archive_changes_nothing_and_says_why(member, profile, django_capture_on_commit_callbacks) -> None:
    job = new_job(member, profile)
    copies = unpack(member, job, "evil.tgz", tgz(SYSTEM, link="toppar/passwd"), django_capture_on_commit_callbacks)
    job = Job.objects.get(pk=job.pk)
    assert copies == []
    assert not InputFile.objects.filter(job=job).exists()
    assert job.state == JobState.DRAFT
    assert job.error_code == "ARCHIVE_LINK"
    assert "not used" in job.error_message
    assert not [p for p in file_store.upload_path(job.uuid, "x").parent.rglob("*") if p.is_file()]


def test_only_archives_are_taken(member, profile) -> None:
    job = new_job(member, profile)
    with pytest.raises(InvalidInput) as refused:
        input_archives.receive_input_archive(user=member, job_id=job.pk, name="inputs.rar", chunks=[b"x"])
    assert refused.value.code == "ARCHIVE_KIND_UNKNOWN"


def test_the_api_takes_an_archive_for_ones_own_job_only(member, other_member, profile) -> None:
    api_client = Client()
    job = new_job(member, profile)
    upload = SimpleUploadedFile("charmm-gui.tgz", tgz(SYSTEM), content_type="application/gzip")
    api_client.force_login(other_member)
    assert api_client.post(f"/api/v1/jobs/{job.pk}/archives", {"file": upload}).status_code == 404
    api_client.force_login(member)
    upload.seek(0)
    answer = api_client.post(f"/api/v1/jobs/{job.pk}/archives", {"file": upload})
    assert answer.status_code == 202
    assert answer.json()["task_id"]


def test_paths_in_the_tree_must_stay_in_the_job_folder(tmp_path: Path) -> None:
    assert file_store.clean_input_path("namd/toppar/par all.prm") == "namd/toppar/par_all.prm"
    with pytest.raises(InvalidInput):
        file_store.clean_input_path("namd/../../x")


def test_a_redelivered_unpack_registers_the_same_inputs_once(
    member, profile, django_capture_on_commit_callbacks
) -> None:
    """A worker killed after registering the files but before removing the archive: the task runs again."""
    job = new_job(member, profile)
    with django_capture_on_commit_callbacks():
        input_archives.receive_input_archive(user=member, job_id=job.pk, name="a.tgz", chunks=[tgz(SYSTEM)])
    staged = next(file_store.upload_path(job.uuid, input_archives.ARCHIVES_DIR).iterdir())
    kept = staged.read_bytes()
    with django_capture_on_commit_callbacks():
        input_archives.unpack_input_archive(
            job_id=job.pk, archive_path=str(staged), kind="tar.gz", acting_user_id=member.pk
        )
    first = {f.name: f.staged_path for f in InputFile.objects.filter(job=job)}
    staged.write_bytes(kept)  # as if the first run died before its `finally`
    with django_capture_on_commit_callbacks():
        input_archives.unpack_input_archive(
            job_id=job.pk, archive_path=str(staged), kind="tar.gz", acting_user_id=member.pk
        )
    second = {f.name: f.staged_path for f in InputFile.objects.filter(job=job)}
    assert set(second) == set(first) == set(SYSTEM)
    assert all(not Path(path).exists() for path in first.values())  # the first run's copies are replaced
    assert all(Path(path).exists() for path in second.values())
    assert (
        input_archives.unpack_input_archive(
            job_id=job.pk, archive_path=str(staged), kind="tar.gz", acting_user_id=member.pk
        )
        == 0
    )
