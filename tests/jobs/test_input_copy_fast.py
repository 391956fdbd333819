"""jobs.services.copy_input_file and copy_input_batch against the fake member session."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import services
from jobs.models import InputFile, Job, JobState
from portal.errors import ClusterUnreachable
from tests.factories import InputFileFactory, JobFactory

pytestmark = pytest.mark.django_db

WATER = Path(__file__).resolve().parents[1] / "fixtures" / "namd"
ROLES = {"water.psf": "structure", "water.pdb": "coordinates", "par_water.prm": "parameters"}


def uploading_job(credential) -> Job:
    return JobFactory(owner=credential.user, profile=credential.profile, state=JobState.UPLOADING)


def received(job: Job, name: str, content: bytes | None = None) -> InputFile:
    data = content if content is not None else (WATER / name).read_bytes()
    return InputFileFactory(job=job, name=name, role=ROLES.get(name, ""), content=data)


def copy_batch(job: Job, inputs: list[InputFile]) -> None:
    services.copy_input_batch(job_id=job.pk, input_ids=[f.pk for f in inputs], acting_user_id=job.owner_id)


def test_one_file_is_uploaded_checked_and_its_staged_copy_removed(fake_cluster, credential) -> None:
    job = uploading_job(credential)
    psf = received(job, "water.psf")
    services.copy_input_file(input_id=psf.pk, acting_user_id=job.owner_id)
    copied = InputFile.objects.get(pk=psf.pk)
    assert (copied.state, copied.bytes_uploaded, copied.staged_path) == (InputFile.State.UPLOADED, psf.size_bytes, "")
    assert fake_cluster.file(f"{job.project_dir}/water.psf") == (WATER / "water.psf").read_bytes()
    assert Path(psf.staged_path).exists() is False
    assert fake_cluster.ran("upload") == [("upload", "--", f"{job.project_dir}/water.psf")]
    assert Job.objects.get(pk=job.pk).state == JobState.UPLOADING  # two inputs of the config still missing


def test_a_corrupted_upload_leaves_nothing_and_is_retried(fake_cluster, credential) -> None:
    job = uploading_job(credential)
    psf = received(job, "water.psf")
    fake_cluster.corrupt(f"{job.project_dir}/water.psf")
    with pytest.raises(ClusterUnreachable) as retried:
        services.copy_input_file(input_id=psf.pk, acting_user_id=job.owner_id)
    assert retried.value.code == "TRANSFER_CORRUPTED"
    assert InputFile.objects.get(pk=psf.pk).state == InputFile.State.RECEIVED
    assert fake_cluster.has_file(f"{job.project_dir}/water.psf") is False
    assert Path(psf.staged_path).exists() is True  # kept for the retry


def test_a_batch_travels_as_one_tar_stream_checked_by_one_sha256sum(fake_cluster, credential) -> None:
    job = uploading_job(credential)
    inputs = [received(job, name) for name in ROLES] + [received(job, "toppar/extra.str", b"* extra\n")]
    copy_batch(job, inputs)
    assert fake_cluster.written == [(job.project_dir, ("par_water.prm", "toppar/extra.str", "water.pdb", "water.psf"))]
    assert len(fake_cluster.ran("tar")) == 1
    assert len(fake_cluster.ran("sha256sum")) == 1
    assert fake_cluster.ran("mkdir") == [("mkdir", "-p", "--", job.project_dir, f"{job.project_dir}/toppar")]
    assert fake_cluster.file(f"{job.project_dir}/toppar/extra.str") == b"* extra\n"
    states = set(InputFile.objects.filter(job=job).values_list("state", flat=True))
    assert states == {InputFile.State.UPLOADED}
    assert Job.objects.get(pk=job.pk).state == JobState.READY  # every input the config reads is on the cluster


def test_a_batch_file_whose_sha256_differs_on_the_cluster_fails_alone(fake_cluster, credential) -> None:
    job = uploading_job(credential)
    inputs = [received(job, name) for name in ROLES]
    fake_cluster.corrupt(f"{job.project_dir}/water.pdb")
    copy_batch(job, inputs)
    states = dict(InputFile.objects.filter(job=job).values_list("name", "state"))
    assert states == {"water.psf": "UPLOADED", "par_water.prm": "UPLOADED", "water.pdb": "FAILED"}
    assert InputFile.objects.get(job=job, name="water.pdb").problem_code == "COPY_CORRUPTED"
    assert Job.objects.get(pk=job.pk).state == JobState.UPLOADING
