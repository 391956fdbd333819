"""A view opened while the inputs are still on their way to the cluster: built from the portal's staged copies,
asking nothing of the cluster (the copies on the cluster are read by tests/jobs/test_viewer_on_cluster.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clusters.models import ClusterCredential
from jobs.models import InputFile, Job, JobView
from jobs.services import viewer
from tests.factories import CredentialFactory
from tests.jobs.unit_jobs import new_job, unit_profile

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "namd"


@pytest.fixture
def member_credential(db) -> ClusterCredential:
    return CredentialFactory(profile=unit_profile())


def water_job(credential: ClusterCredential) -> Job:
    return new_job(credential.user, credential.profile)


def test_a_view_opened_before_the_inputs_reach_the_cluster_reads_their_staged_copies(
    fake_cluster, member_credential, tmp_path
) -> None:
    job = water_job(member_credential)
    for name in ("water.psf", "water.pdb"):
        staged = shutil.copy(FIXTURES / name, tmp_path / f"staged-{name}")
        InputFile.objects.update_or_create(job=job, name=name, defaults={"staged_path": str(staged)})
    JobView.objects.create(job=job, state=JobView.State.PREPARING)

    viewer.prepare_view(job_id=job.pk, acting_user_id=job.owner_id)

    view = JobView.objects.get(job=job)
    assert view.state == JobView.State.READY, view.error_message
    assert view.atom_count == sum(line.startswith("ATOM") for line in (FIXTURES / "water.pdb").read_text().splitlines())
    assert all(facts["ready"] for facts in view.parts.values())
    assert fake_cluster.argvs == []  # nothing was asked of the cluster


def test_a_view_whose_inputs_are_neither_staged_nor_on_the_cluster_says_which_is_missing(
    fake_cluster, member_credential
) -> None:
    job = water_job(member_credential)
    JobView.objects.create(job=job, state=JobView.State.PREPARING)

    viewer.prepare_view(job_id=job.pk, acting_user_id=job.owner_id)

    view = JobView.objects.get(job=job)
    assert (view.state, view.error_code) == (JobView.State.FAILED, "VIEW_INPUT_MISSING")
    assert "water.psf" in view.error_message
