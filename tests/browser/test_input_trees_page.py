"""Inputs as a tree from the browser: a folder chosen whole and an archive, on the real stack (live server, a real
Celery worker and beat, the local SLURM cluster): each file lands under its path and reaches the cluster."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from jobs.models import InputFile
from tests.jobs.cluster_jobs import CELL, FIXTURES, QUICK, WATER, create_job, register

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_tree"
TREE = {
    "water.psf": "water.psf",
    "water.pdb": "water.pdb",
    "par_water.prm": "par_water.prm",
    "toppar/extra.str": "par_water.prm",
}


@pytest.fixture
def cluster(celery_worker, celery_beat_process):
    return register((MEMBER,))


def on_cluster(job_id: int) -> set[str]:
    return set(InputFile.objects.filter(job_id=job_id, state=InputFile.State.UPLOADED).values_list("name", flat=True))


def test_a_folder_chosen_whole_keeps_its_tree(browser, cluster, tmp_path: Path) -> None:
    client = cluster.client(cluster.members[0])
    job = create_job(client, cluster.profile, values={**WATER, **CELL, **QUICK, "run_steps": 100})
    folder = tmp_path / "my-system"
    for name, source in TREE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / source, folder / name)
    browser.login(cluster.members[0].username)
    browser.visit(f"/jobs/{job['id']}/inputs/")
    browser.find("input[data-upload-folder]").send_keys(str(folder))
    browser.wait_for(lambda d: on_cluster(job["id"]) == set(TREE), "the folder's files on the cluster", 90)
    browser.wait_for(
        lambda d: "ready to submit" in d.find_element(By.ID, "inputs-status").text, "the job to be ready", 60
    )
    browser.screenshot("wizard-4-folder-uploaded")
    browser.assert_nothing_external()


def test_an_archive_is_unpacked_into_the_jobs_tree(browser, cluster, tmp_path: Path) -> None:
    client = cluster.client(cluster.members[0])
    job = create_job(client, cluster.profile, values={**WATER, **CELL, **QUICK, "run_steps": 100})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, source in TREE.items():
            archive.add(FIXTURES / source, arcname=f"charmm-gui-0000001/{name}")
    path = tmp_path / "inputs-tree.tgz"
    path.write_bytes(buffer.getvalue())
    browser.login(cluster.members[0].username)
    browser.visit(f"/jobs/{job['id']}/inputs/")
    browser.find("input[data-upload-archive]").send_keys(str(path))
    browser.wait_for(lambda d: on_cluster(job["id"]) == set(TREE), "the archive's files on the cluster", 90)
    browser.wait_for(
        lambda d: "ready to submit" in d.find_element(By.ID, "inputs-status").text, "the job to be ready", 60
    )
    assert "received: it is unpacked" in browser.find("#uploads").text
    browser.screenshot("wizard-4-archive-unpacked")
    browser.assert_nothing_external()
