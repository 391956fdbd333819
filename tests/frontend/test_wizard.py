"""The new-job wizard: template cards, the generated form with its live check and preview, creating the draft,
the inputs page with its polled status, submit. Real PostgreSQL; no cluster is contacted."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from clusters.models import LaunchRecipe, Partition
from jobs import services
from jobs.models import InputFile, Job, JobState
from templates_app.models import Template
from templates_app.rendering import VariableType
from templates_app.specs import specs_from_json
from tests.factories import ClusterProfileFactory
from tests.jobs.unit_jobs import FIXTURES, RESOURCES, VALUES, new_job

pytestmark = pytest.mark.django_db
FORM_URL = "/jobs/new/npt-equilibration/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def filled(profile, **changes) -> dict[str, str]:
    """The whole form as a browser sends it: every default, the fixture's values, 10 minutes on `debug`
    (no file names: the form asks for files on the inputs step)."""
    version = Template.objects.get(slug="npt-equilibration").versions.order_by("-number").first()
    specs = [spec for spec in specs_from_json(version.variables) if spec.type is not VariableType.FILE]
    defaults = {f"var_{spec.name}": "" if spec.default is None else str(spec.default) for spec in specs}
    data = {
        "title": "water box",
        "cluster": str(profile.pk),
        "recipe": "cpu",
        "partition": "debug",
        "nodes": "1",
        "ntasks_per_node": "1",
        "cpus_per_task": "1",
        "memory_mb": "",
        "walltime": "00:10:00",
        "gpus": "0",
        **{f"var_{spec.name}": str(VALUES[spec.name]) for spec in specs if spec.name in VALUES},
    }
    return {**defaults, **data, **changes}


def error_slot(content: bytes, field: str) -> str:
    """The text of a field's error slot (its id is Django's auto id + '_error')."""
    match = re.search(rf'<p class="field-error" id="id_{field}_error"[^>]*>(.*?)</p>', content.decode(), re.S)
    assert match is not None, f"no error slot for {field}"
    return re.sub(r"<[^>]+>", " ", match.group(1)).strip()


def test_the_cards_offer_each_template_and_hide_retired_ones(member_client, profile) -> None:
    Template.objects.filter(slug="vacuum-minimization").update(is_retired=True)
    page = member_client.get("/jobs/new/").content.decode()
    assert "Explicit-solvent NPT equilibration" in page
    assert "Production from a restart" in page
    assert f'href="{FORM_URL}"' in page
    assert re.search(r"\d+ variables to fill in", page) is not None
    assert "Minimization in vacuum" not in page
    assert member_client.get("/jobs/new/vacuum-minimization/").status_code == 404


def test_the_form_has_a_field_per_variable_with_its_default_and_live_checks(member_client, profile) -> None:
    page = member_client.get(FORM_URL).content.decode()
    run_steps = re.search(r'<input[^>]*name="var_run_steps"[^>]*>', page).group(0)
    assert 'value="5000"' in run_steps
    assert 'min="1"' in run_steps
    assert 'type="number"' in run_steps
    assert 'hx-post="/jobs/new/npt-equilibration/check/"' in run_steps
    assert 'hx-trigger="input changed delay:400ms, change"' in run_steps
    assert 'aria-describedby="id_var_run_steps_helptext id_var_run_steps_error"' in run_steps
    assert re.search(r'<input[^>]*name="var_temperature"[^>]*value="300.0"', page) is not None
    assert re.search(r'<input[^>]*name="var_output_name"[^>]*value="out"', page) is not None
    assert 'name="var_structure"' not in page  # files are asked for as files on the inputs step
    assert "Temperature (K)" in page
    assert re.search(r'<option value="debug" selected>debug: at most 01:00:00, 2 cores per node</option>', page)
    assert 'name="walltime"' in page
    assert "Walltime (hh:mm:ss)" in page
    assert 'hx-post="/jobs/new/npt-equilibration/preview/"' in page


def test_the_live_check_puts_each_error_next_to_its_field_with_its_code(member_client, profile) -> None:
    bad = filled(profile, var_run_steps="-5", var_output_name="out\nrun 1", walltime="02:00:00")
    response = member_client.post(f"{FORM_URL}check/", bad, **HTMX)
    assert response.status_code == 200
    assert "VALUE_OUT_OF_RANGE" in error_slot(response.content, "var_run_steps")
    assert "VALUE_UNSAFE" in error_slot(response.content, "var_output_name")
    walltime = error_slot(response.content, "walltime")
    assert "TIME_OVER_LIMIT" in walltime
    assert "debug allows at most 1 h" in walltime
    assert error_slot(response.content, "var_temperature") == ""  # every slot is sent, cleared when fine
    assert response.content.count(b'hx-swap-oob="true"') >= len(bad)
    good = member_client.post(f"{FORM_URL}check/", filled(profile), **HTMX)
    assert error_slot(good.content, "var_run_steps") == error_slot(good.content, "walltime") == ""


def test_the_preview_shows_the_config_the_batch_script_and_the_cost(member_client, profile) -> None:
    response = member_client.post(f"{FORM_URL}preview/", filled(profile), **HTMX)
    page = response.content.decode()
    assert re.search(r"structure\s+system.psf", page) is not None  # the template's file path
    assert "#SBATCH --partition=debug" in page
    assert "#SBATCH --time=0-00:10:00" in page
    assert re.search(r"<dt>Core-hours</dt><dd>0.1667</dd>", page) is not None
    over = member_client.post(f"{FORM_URL}preview/", filled(profile, walltime="02:00:00"), **HTMX).content.decode()
    assert "TIME_OVER_LIMIT" in over
    assert "#SBATCH" not in over


def test_a_post_with_bad_values_comes_back_with_every_value_and_error(member_client, profile) -> None:
    bad = filled(profile, title="my run", var_run_steps="-5", var_cell_x="33", nodes="0")
    response = member_client.post(FORM_URL, bad)
    page = response.content.decode()
    assert response.status_code == 200
    assert Job.objects.count() == 0
    assert re.search(r'<input[^>]*name="title"[^>]*value="my run"', page) is not None
    assert re.search(r'<input[^>]*name="var_cell_x"[^>]*value="33"', page) is not None
    run_steps = re.search(r'<input[^>]*name="var_run_steps"[^>]*>', page).group(0)
    assert 'value="-5"' in run_steps
    assert 'aria-invalid="true"' in run_steps
    assert "VALUE_OUT_OF_RANGE" in error_slot(response.content, "var_run_steps")
    assert "VALUE_OUT_OF_RANGE" in error_slot(response.content, "nodes")


def test_a_good_post_creates_a_draft_and_goes_to_its_inputs(member_client, member, profile) -> None:
    response = member_client.post(FORM_URL, filled(profile, continue_on_timeout="on"))
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/inputs/"
    assert (job.owner, job.state, job.title, job.recipe_name) == (member, JobState.DRAFT, "water box", "cpu")
    assert (job.values["run_steps"], job.values["temperature"]) == (100, 300.0)
    assert (job.resources["walltime_s"], job.resources["partition"], job.continue_on_timeout) == (600, "debug", True)


def test_a_service_refusal_on_post_is_shown_next_to_its_field(member_client, profile) -> None:
    LaunchRecipe.objects.create(profile=profile, name="gpu", kind="gpu", command="namd3 +p{cores} {config}")
    response = member_client.post(FORM_URL, filled(profile, recipe="gpu"))
    assert Job.objects.count() == 0
    assert "LAUNCH_COMMAND_INVALID" in error_slot(response.content, "recipe")


def test_a_cluster_change_renders_that_clusters_resources(member_client, profile) -> None:
    other = ClusterProfileFactory(slug="big")
    Partition.objects.create(profile=other, name="long", is_default=True, max_walltime_s=86400, cores_per_node=64)
    LaunchRecipe.objects.create(profile=other, name="mpi", kind="cpu", command="mpirun namd2 {config}")
    response = member_client.get(
        FORM_URL, {"cluster": other.pk, "nodes": "3", "partition": "debug"}, HTTP_HX_TARGET="wizard-resources", **HTMX
    )
    page = response.content.decode()
    assert response["HX-Trigger-After-Settle"] == "wizard-resources-changed"
    assert '<option value="long" selected>' in page
    assert 'value="debug"' not in page
    assert '<option value="mpi" selected>' in page
    assert re.search(r'<input[^>]*name="nodes"[^>]*value="3"', page) is not None
    assert "<form" not in page


def test_the_inputs_page_lists_the_files_the_config_reads(member_client, member, profile) -> None:
    job = new_job(member, profile)
    page = member_client.get(f"/jobs/{job.pk}/inputs/").content.decode()
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        assert f'data-upload-name="{name}"' in page
    assert 'data-max-bytes="10000"' in page
    assert f'data-upload-url="/api/v1/jobs/{job.pk}/uploads/__name__"' in page
    assert "Upload water.psf: the config reads it (&#x27;structure&#x27;, line 2)." in page
    assert re.search(r'<button type="submit" id="inputs-submit" disabled', page) is not None


def test_the_inputs_status_polls_only_while_a_file_is_being_copied(member_client, member, profile) -> None:
    job = new_job(member, profile)
    url = f"/jobs/{job.pk}/inputs/status/"
    assert 'hx-trigger="upload-done from:body"' in member_client.get(url, **HTMX).content.decode()
    services.receive_input_file(
        user=member, job_id=job.pk, name="water.psf", chunks=[(FIXTURES / "water.psf").read_bytes()]
    )
    copying = member_client.get(url, **HTMX).content.decode()
    assert 'hx-trigger="every 2s, upload-done from:body"' in copying
    assert "Received by the portal" in copying
    assert "3 atoms" in copying
    InputFile.objects.filter(job=job).update(state=InputFile.State.UPLOADED)
    copied = member_client.get(url, **HTMX).content.decode()
    assert "every 2s" not in copied
    assert "On the cluster" in copied
    assert "Upload water.pdb: the config reads it (&#x27;coordinates&#x27;, line 3)." in copied


def test_submit_is_refused_with_the_reason_until_the_inputs_are_ready(member_client, member, profile) -> None:
    job = new_job(member, profile)
    response = member_client.post(f"/jobs/{job.pk}/submit/", follow=True)
    assert response.redirect_chain[-1][0] == f"/jobs/{job.pk}/inputs/"
    reason = "Upload water.psf: the config reads it (&#x27;structure&#x27;, line 2). (INPUTS_NOT_READY)"
    assert reason in response.content.decode()
    assert Job.objects.get(pk=job.pk).state == JobState.DRAFT


def test_submit_when_ready_is_saved_for_a_job_still_uploading(member_client, member, profile) -> None:
    job = new_job(member, profile)
    response = member_client.post(f"/jobs/{job.pk}/inputs/", {"submit_when_ready": "on"}, follow=True)
    assert Job.objects.get(pk=job.pk).submit_when_ready is True
    assert "It will be submitted once the inputs are ready." in response.content.decode()
    assert re.search(r'<input[^>]*name="submit_when_ready"[^>]*checked', response.content.decode()) is not None


def test_a_submitted_job_shows_its_state_instead_of_uploads(member_client, member, profile) -> None:
    job = new_job(member, profile)
    Job.objects.filter(pk=job.pk).update(state=JobState.PENDING)
    page = member_client.get(f"/jobs/{job.pk}/inputs/").content.decode()
    assert 'class="badge state-PENDING"' in page
    assert f'href="/jobs/{job.pk}/"' in page
    assert "data-upload-name" not in page
    assert "upload.js" not in page


def test_another_member_gets_404_on_the_inputs_their_status_and_submit(member, other_member, profile) -> None:
    job = new_job(member, profile)
    client = Client()
    client.force_login(other_member)
    responses = [
        client.get(f"/jobs/{job.pk}/inputs/"),
        client.get(f"/jobs/{job.pk}/inputs/status/", **HTMX),
        client.post(f"/jobs/{job.pk}/submit/"),
        client.post(f"/jobs/{job.pk}/inputs/", {"submit_when_ready": "on"}),
    ]
    assert [response.status_code for response in responses] == [404] * 4
    assert b"JOB_NOT_FOUND" in responses[1].content
    assert Job.objects.get(pk=job.pk).submit_when_ready is False


def test_the_inputs_page_takes_an_archive_or_a_folder_and_names_each_files_line(member_client, member, profile) -> None:
    job = new_job(member, profile)
    page = member_client.get(f"/jobs/{job.pk}/inputs/").content.decode()
    assert f'data-archive-url="/api/v1/jobs/{job.pk}/archives"' in page
    assert "webkitdirectory" in page
    assert '<code>water.psf</code> <span class="muted">structure, config line 2</span>' in page


def test_an_unpacking_archive_keeps_the_status_polling_and_a_refusal_is_shown(member_client, member, profile) -> None:
    from jobs.transitions import note

    job = new_job(member, profile)
    url = f"/jobs/{job.pk}/inputs/status/"
    note(job, "ARCHIVE_RECEIVED", source="user", detail="inputs.tgz: unpacking")
    unpacking = member_client.get(url, **HTMX).content.decode()
    assert "every 2s" in unpacking
    assert "Unpacking the archive" in unpacking
    note(job, "ARCHIVE_REFUSED", source="task", detail="ARCHIVE_LINK: no links")
    Job.objects.filter(pk=job.pk).update(error_code="ARCHIVE_LINK", error_message="The archive was not used: links.")
    refused = member_client.get(url, **HTMX).content.decode()
    assert "every 2s" not in refused
    assert "The archive was not used: links. <code>ARCHIVE_LINK</code>" in refused


def test_the_cell_a_pdb_says_is_offered_and_taken_as_the_jobs_values(member_client, member, profile) -> None:
    job = new_job(member, profile)
    cryst1 = FIXTURES.parent / "namd_inputs" / "1ubq_head.pdb"
    services.receive_input_file(user=member, job_id=job.pk, name="water.pdb", chunks=[cryst1.read_bytes()])
    status = member_client.get(f"/jobs/{job.pk}/inputs/status/", **HTMX).content.decode()
    assert "<code>cell_x = 50.84</code>, <code>cell_y = 42.77</code>, <code>cell_z = 28.95</code>" in status
    response = member_client.post(f"/jobs/{job.pk}/inputs/values/", follow=True)
    assert "The job now uses what its files say: cell_x = 50.84" in response.content.decode()
    job.refresh_from_db()
    assert (job.values["cell_x"], job.values["cell_z"]) == (50.84, 28.95)
    assert re.search(r"^cellBasisVector1\s+50.84 0", job.config_text, re.MULTILINE)
    assert "Your files say" not in member_client.get(f"/jobs/{job.pk}/inputs/status/", **HTMX).content.decode()


def test_a_restart_whose_step_differs_from_firsttimestep_is_warned_and_its_step_offered(
    member_client, member, profile
) -> None:
    restart = {name: value for name, value in VALUES.items() if not name.startswith("cell_")}
    request = services.JobRequest(
        template_id=Template.objects.get(slug="production-restart").pk,
        cluster_id=profile.pk,
        recipe="cpu",
        title="restart",
        values={**restart, "first_step": 0},
        resources=RESOURCES,
    )
    job = services.create_job(user=member, request=request)
    xsc = b"#$LABELS step a_x a_y a_z b_x b_y b_z c_x c_y c_z o_x o_y o_z\n25000 30 0 0 0 30 0 0 0 30 0 0 0\n"
    services.receive_input_file(user=member, job_id=job.pk, name="previous.xsc", chunks=[xsc])
    status = member_client.get(f"/jobs/{job.pk}/inputs/status/", **HTMX).content.decode()
    assert "ends at step 25000 but &#x27;firsttimestep&#x27; is 0" in status
    assert "<code>first_step = 25000</code>" in status
    member_client.post(f"/jobs/{job.pk}/inputs/values/")
    status = member_client.get(f"/jobs/{job.pk}/inputs/status/", **HTMX).content.decode()
    assert "NAMD_FIRST_STEP_MISMATCH" not in status
