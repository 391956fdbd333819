"""CHARMM-GUI in two steps, on the local SLURM cluster through the API and a real Celery worker.

An admin imports a CHARMM-GUI Solution Builder download (the real `step4_equilibration.inp` and
`step5_production.inp`, tests/fixtures/namd_standin/charmm_gui_solution): one template per stage,
toppar/ as assets. A member uploads their own CHARMM-GUI archive (without toppar/: the template
ships it) to a step4 job, which runs to COMPLETED; step5 then starts from step4's folder (it reads
step4_equilibration.coor/.vel/.xsc) and runs to COMPLETED too.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from clusters.models import LaunchRecipe
from jobs.models import InputFile
from templates_app.charmm_gui import import_charmm_gui
from tests.jobs.cluster_jobs import job, register, wait_for, wait_for_state, wait_until_finished

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_charmm"
DOWNLOAD = Path(__file__).resolve().parents[1] / "fixtures" / "namd_standin" / "charmm_gui_solution"
# the real configs run 130,000 and 50,000,000 steps: the stand-in runs them unpaced
FAST_RECIPE = {
    "name": "CPU: stand-in unpaced",
    "kind": LaunchRecipe.Kind.CPU,
    "command": "NAMD_STANDIN_STEPS_PER_SECOND=0 srun namd3 +p{cores} {config}",
}


@pytest.fixture
def setup(celery_worker):
    return register((MEMBER,))


def member_archive() -> bytes:
    """The member's own CHARMM-GUI download, as CHARMM-GUI packs it (one top folder), without toppar/."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(DOWNLOAD.rglob("*")):
            relative = path.relative_to(DOWNLOAD)
            if path.is_file() and "toppar" not in relative.parts and path.suffix != ".inp":
                archive.add(path, arcname=f"charmm-gui-7654321/{relative}")
    return buffer.getvalue()


def test_an_imported_charmm_gui_protocol_runs_step4_then_step5(setup, lab_admin, tmp_path: Path) -> None:
    shutil.copytree(DOWNLOAD, tmp_path / "charmm-gui-1234567")
    step4, step5 = import_charmm_gui(source=tmp_path / "charmm-gui-1234567", user=lab_admin)
    version = step4.versions.get()
    assert version.workdir == "namd"
    assert {asset.relpath for asset in version.assets.all()} >= {"namd/toppar/par_all36m_prot.prm"}
    LaunchRecipe.objects.create(profile=setup.profile, **FAST_RECIPE)
    client = setup.client(setup.members[0])

    created = client.post(
        "/api/v1/jobs",
        {
            "template_id": step4.pk,
            "cluster_id": setup.profile.pk,
            "recipe": FAST_RECIPE["name"],
            "title": "tip3 box",
            "values": {},
            "resources": {"partition": "debug", "walltime_s": 1800},
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]
    assert "namd/job.namd" in created.json()["batch_script"]
    upload = SimpleUploadedFile("charmm-gui.tgz", member_archive(), content_type="application/gzip")
    assert client.post(f"/api/v1/jobs/{job_id}/archives", {"file": upload}).status_code == 202
    ready = wait_for(lambda: (j := job(client, job_id))["state"] == "READY" and j, timeout_s=120, what="READY")
    names = {i["name"] for i in ready["inputs"]}
    assert {"namd/step3_input.psf", "namd/step3_input.pdb", "step3_pbcsetup.str"} <= names
    assert "namd/toppar/par_all36m_prot.prm" in names  # shipped by the template, not asked for
    assert InputFile.objects.get(job_id=job_id, name="namd/toppar/par_all36m_prot.prm").is_template_asset

    assert client.post(f"/api/v1/jobs/{job_id}/submit").status_code == 202
    done = wait_for_state(client, job_id, {"COMPLETED", "FAILED"}, timeout_s=300)
    assert done["state"] == "COMPLETED", done
    wait_until_finished(client, job_id, timeout_s=120)
    client.post(f"/api/v1/jobs/{job_id}/files/refresh")
    files = wait_for(
        lambda: {f["path"] for f in client.get(f"/api/v1/jobs/{job_id}/files").json()["files"]} or None,
        timeout_s=60,
        what="the project listing",
    )
    assert {"namd/step4_equilibration.coor", "namd/step3_input.str"} <= files  # the exec'd file, made on the cluster

    following = client.post(
        f"/api/v1/jobs/{job_id}/next-stage",
        {"template_id": step5.pk, "submit": True},
        content_type="application/json",
    )
    assert following.status_code == 202, following.content
    step5_id = following.json()["job"]["id"]
    finished = wait_for_state(client, step5_id, {"COMPLETED", "FAILED"}, timeout_s=600)
    assert finished["state"] == "COMPLETED", finished
