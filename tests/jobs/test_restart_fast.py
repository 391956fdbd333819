"""jobs.services.prepare_restart against the fake member session: the parent's restart files become inputs."""

from __future__ import annotations

import pytest

from jobs import services
from jobs.models import InputFile, Job, JobEvent, JobState
from jobs.services.restart import MAX_XSC_BYTES
from tests.factories import InputFileFactory, JobFactory

pytestmark = pytest.mark.django_db

# NAMD's .xsc layout (as tests/fixtures/namd_standin/.../step3_input.xsc): a header, then step and cell.
XSC = (
    "# NAMD extended system configuration output file\n"
    "#$LABELS step a_x a_y a_z b_x b_y b_z c_x c_y c_z o_x o_y o_z\n"
    "{step} 30 0 0 0 30 0 0 0 30 0 0 0\n"
)
ATOMS = (3).to_bytes(4, "little")  # a binary .coor/.vel starts with its atom count (int32)
WATER_INPUTS = {"water.psf": "structure", "water.pdb": "coordinates", "par_water.prm": "parameters"}


def parent_job(credential, fake_cluster, **traits) -> Job:
    """A finished water job with its inputs and results in its project dir on the cluster."""
    parent = JobFactory(owner=credential.user, profile=credential.profile, **traits)
    for name, role in WATER_INPUTS.items():
        InputFileFactory(job=parent, name=name, role=role, content=name.encode(), on_cluster=True)
        fake_cluster.put(f"{parent.project_dir}/{name}", name.encode())
    return parent


def put_results(fake_cluster, parent: Job, prefix: str, step: int) -> None:
    fake_cluster.put(f"{parent.project_dir}/{prefix}xsc", XSC.format(step=step).encode())
    fake_cluster.put(f"{parent.project_dir}/{prefix}coor", ATOMS + b"\x00" * 72)
    fake_cluster.put(f"{parent.project_dir}/{prefix}vel", ATOMS + b"\x01" * 72)


def restart(parent: Job) -> Job:
    child, _ = services.request_restart(user=parent.owner, job_id=parent.pk)
    services.prepare_restart(job_id=child.pk, acting_user_id=parent.owner_id)
    return Job.objects.get(pk=child.pk)


def test_a_completed_job_continues_from_its_final_files(fake_cluster, credential) -> None:
    parent = parent_job(credential, fake_cluster, completed=True)
    put_results(fake_cluster, parent, "out.", 250)
    put_results(fake_cluster, parent, "out.restart.", 200)
    child = restart(parent)
    tag = f"restart-{parent.uuid.hex[:8]}"
    assert child.values["first_step"] == 250
    assert "firsttimestep      250" in child.config_text
    inputs = {f.name: f for f in InputFile.objects.filter(job=child)}
    assert set(inputs) == {*WATER_INPUTS, f"{tag}.coor", f"{tag}.vel", f"{tag}.xsc"}
    assert inputs[f"{tag}.coor"].copied_from == f"{parent.project_dir}/out.coor"
    assert (inputs[f"{tag}.coor"].atom_count, inputs[f"{tag}.coor"].size_bytes) == (3, 76)
    assert fake_cluster.file(f"{child.project_dir}/{tag}.xsc") == XSC.format(step=250).encode()
    assert fake_cluster.ran("upload") == []  # copied on the cluster, not through the portal
    # READY, and the member asked to submit when ready (the task is sent on commit)
    assert child.state == JobState.SUBMITTING
    assert list(child.events.filter(kind="TRANSITION").values_list("new_state", flat=True)) == [
        "UPLOADING",
        "READY",
        "SUBMITTING",
    ]


def test_a_timed_out_job_continues_from_its_last_restart_files(fake_cluster, credential) -> None:
    parent = parent_job(credential, fake_cluster, timed_out=True)
    put_results(fake_cluster, parent, "out.", 250)  # a timed-out NAMD wrote no final files; even if some exist
    put_results(fake_cluster, parent, "out.restart.", 200)
    child = restart(parent)
    assert child.values["first_step"] == 200
    tag = f"restart-{parent.uuid.hex[:8]}"
    assert InputFile.objects.get(job=child, name=f"{tag}.xsc").copied_from == f"{parent.project_dir}/out.restart.xsc"


def test_a_parent_without_restart_files_leaves_a_draft_with_the_reason(fake_cluster, credential) -> None:
    parent = parent_job(credential, fake_cluster, completed=True)
    child = restart(parent)
    assert (child.state, child.error_code, child.config_text) == (JobState.DRAFT, "RESTART_FILES_MISSING", "")
    assert InputFile.objects.filter(job=child).count() == 0
    assert JobEvent.objects.filter(job=child, kind="RESTART_FAILED").count() == 1
    assert fake_cluster.ran("cp") == []


def test_an_xsc_past_its_cap_fails_the_restart_with_the_code_and_copies_nothing(fake_cluster, credential) -> None:
    parent = parent_job(credential, fake_cluster, completed=True)
    put_results(fake_cluster, parent, "out.", 250)
    fake_cluster.put(f"{parent.project_dir}/out.xsc", b"0" * (MAX_XSC_BYTES + 1))

    child = restart(parent)

    assert (child.state, child.error_code, child.config_text) == (JobState.DRAFT, "REMOTE_FILE_TOO_LARGE", "")
    assert JobEvent.objects.filter(job=child, kind="RESTART_FAILED").count() == 1
    assert fake_cluster.ran("head")[0][:3] == ("head", "-c", str(MAX_XSC_BYTES + 1))
    assert fake_cluster.ran("cp") == []


def test_an_xsc_of_exactly_its_cap_is_read(fake_cluster, credential) -> None:
    parent = parent_job(credential, fake_cluster, completed=True)
    put_results(fake_cluster, parent, "out.", 250)
    xsc = XSC.format(step=250).encode()
    fake_cluster.put(f"{parent.project_dir}/out.xsc", xsc + b"#" * (MAX_XSC_BYTES - len(xsc)))

    child = restart(parent)

    assert (child.error_code, child.values["first_step"]) == ("", 250)


def test_the_restart_files_and_inputs_are_confined_before_anything_is_read(fake_cluster, credential) -> None:
    parent = parent_job(credential, fake_cluster, completed=True)
    put_results(fake_cluster, parent, "out.", 250)

    restart(parent)

    (realpath,) = fake_cluster.ran("realpath")[:1]
    checked = set(realpath[realpath.index("--") + 3 :])  # after the two roots
    assert fake_cluster.argvs.index(realpath) < fake_cluster.argvs.index(fake_cluster.ran("head")[0])
    assert {f"{parent.project_dir}/out.xsc", f"{parent.project_dir}/out.restart.xsc"} <= checked
    assert {f"{parent.project_dir}/{name}" for name in WATER_INPUTS} <= checked
