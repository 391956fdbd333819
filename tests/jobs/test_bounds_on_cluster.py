"""Bounds on what the portal reads from a member's folders, on the local SLURM cluster over real sshd.

A restart's .xsc linked to /dev/zero (or grown huge) fails the restart with its code instead of being read;
a download over the per-file cap is refused before anything is staged; a ready copy of an unchanged file
is shared by the next request.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clusters.models import RemoteCommandRecord
from jobs import file_store, services
from jobs.models import Job, JobState, StagedDownload
from jobs.services.restart import MAX_XSC_BYTES, OUTPUT_NAME_RE
from tests.factories import JobFactory
from tests.jobs.cluster_jobs import RECIPE, ClusterSetup, register

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

MEMBER = "np_ci_bounds"


@pytest.fixture
def setup() -> ClusterSetup:
    return register((MEMBER,))


@pytest.fixture
def parent(setup: ClusterSetup) -> Job:
    """A completed job whose project folder exists on the cluster (empty: each test puts what it needs)."""
    member = setup.members[0]
    job = JobFactory(owner=member, profile=setup.profile, recipe_name=RECIPE, completed=True)
    session = setup.session(member)
    session.run(["mkdir", "-p", "--", job.project_dir], check=True)
    yield job
    session.run(["rm", "-rf", "--", job.project_dir], check=True)


def on_cluster(setup: ClusterSetup, *argv: str) -> None:
    setup.session(setup.members[0]).run(list(argv), check=True)


def restart(parent: Job) -> Job:
    child, _ = services.request_restart(user=parent.owner, job_id=parent.pk)
    services.prepare_restart(job_id=child.pk, acting_user_id=parent.owner_id)
    return Job.objects.get(pk=child.pk)


def out_name(parent: Job) -> str:
    return OUTPUT_NAME_RE.search(parent.config_text).group(1)


def test_a_restart_xsc_linked_to_dev_zero_fails_with_the_code_and_reads_nothing(setup, parent) -> None:
    on_cluster(setup, "ln", "-s", "/dev/zero", f"{parent.project_dir}/{out_name(parent)}.xsc")

    child = restart(parent)

    assert (child.state, child.error_code, child.config_text) == (JobState.DRAFT, "REMOTE_PATH_FORBIDDEN", "")
    argvs = [record.argv for record in RemoteCommandRecord.objects.filter(job=child)]
    assert [argv[0] for argv in argvs] == ["realpath"]  # refused before any read or copy


def test_a_huge_restart_xsc_inside_the_folder_fails_with_the_code(setup, parent) -> None:
    on_cluster(setup, "truncate", "-s", "5T", "--", f"{parent.project_dir}/{out_name(parent)}.xsc")

    child = restart(parent)

    assert (child.state, child.error_code) == (JobState.DRAFT, "REMOTE_FILE_TOO_LARGE")
    final_read = RemoteCommandRecord.objects.filter(job=child, argv__0="head").order_by("pk").first()
    assert (final_read.exit_code, final_read.bytes_received) == (0, MAX_XSC_BYTES + 1)  # not a byte more


def stage(parent: Job, relpath: str) -> StagedDownload:
    download, _ = services.request_download(user=parent.owner, job_id=parent.pk, relpath=relpath)
    services.fetch_download(download_id=download.pk, acting_user_id=parent.owner_id)
    return StagedDownload.objects.get(pk=download.pk)


def staged_files(parent: Job) -> list[Path]:
    folder = file_store.download_path(parent.uuid, 0, "x").parent.parent
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def test_a_download_over_the_per_file_cap_is_refused_with_nothing_staged(setup, parent, settings) -> None:
    settings.DOWNLOAD_MAX_BYTES = 1024 * 1024
    on_cluster(setup, "truncate", "-s", "5T", "--", f"{parent.project_dir}/huge.dcd")

    download = stage(parent, "huge.dcd")

    assert (download.state, download.error_code, download.size_bytes) == ("FAILED", "DOWNLOAD_TOO_LARGE", 0)
    assert staged_files(parent) == []
    assert not RemoteCommandRecord.objects.filter(job=parent, argv__0="download").exists()


def test_an_unchanged_file_is_copied_once_and_shared_by_the_next_request(setup, parent) -> None:
    session = setup.session(setup.members[0])
    session.write_files(parent.project_dir, {"small.log": b"ENERGY: 1\n"})
    on_cluster(setup, "touch", "-d", "@1700000000", "--", f"{parent.project_dir}/small.log")

    first = stage(parent, "small.log")
    second = stage(parent, "small.log")
    session.write_files(parent.project_dir, {"small.log": b"ENERGY: 2\n"})  # the same size, a new mtime
    third = stage(parent, "small.log")

    assert [d.state for d in (first, second, third)] == ["READY", "READY", "READY"]
    assert second.local_path == first.local_path
    assert third.local_path != first.local_path
    assert Path(third.local_path).read_bytes() == b"ENERGY: 2\n"
    assert RemoteCommandRecord.objects.filter(job=parent, argv__0="download").count() == 2
