"""The pipeline pages: the protocol wizard (its questions, live check, preview of every step, create), the list, a
run's page (step graph, not-run steps, timeline, polling, actions), resume, access and query counts. Real
PostgreSQL; no cluster is contacted."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from clusters.models import LaunchRecipe
from jobs.models import Job, JobState, Pipeline
from jobs.pipeline_steps import current_steps
from templates_app.models import Protocol
from tests.factories import CredentialFactory
from tests.frontend.pipeline_runs import BUILTIN, SLURM_IDS, copy_run, long_protocol, new_run, set_steps

pytestmark = pytest.mark.django_db
FORM_URL = f"/pipelines/new/{BUILTIN}/"
HTMX = {"HTTP_HX_REQUEST": "true"}
C, F, X, R, P, D = (
    JobState.COMPLETED,
    JobState.FAILED,
    JobState.CANCELLED,
    JobState.RUNNING,
    JobState.PENDING,
    JobState.DRAFT,
)


def filled(profile, **changes) -> dict[str, str]:
    """The form as a browser sends it untouched (every value left to the protocol), 10 minutes on `debug`."""
    data = {
        "title": "water run",
        "cluster": str(profile.pk),
        "recipe": "cpu",
        "partition": "debug",
        "nodes": "1",
        "ntasks_per_node": "1",
        "cpus_per_task": "1",
        "memory_mb": "",
        "walltime": "00:10:00",
        "gpus": "0",
        "continue_on_timeout": "on",
        "shared_cell_x": "30",
        "shared_cell_y": "30",
        "shared_cell_z": "30",
    }
    return {**data, **changes}


def error_slot(content: bytes, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="id_{field}_error"[^>]*>(.*?)</p>', content.decode(), re.S)
    assert match is not None, f"no error slot for {field}"
    return re.sub(r"<[^>]+>", " ", match.group(1)).strip()


def preview_step(page: str, position: int) -> str:
    match = re.search(rf'<details class="pipeline-preview-step" id="preview-step-{position}".*?</details>', page, re.S)
    assert match is not None, f"no step {position} in the preview"
    return match.group(0)


def boxes(page: str) -> dict[int, str]:
    """Each step box's text by position."""
    found = re.findall(r'<li class="pipeline-step [^"]*" data-step="(\d+)">(.*?)</li>', page, re.S)
    return {int(position): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip() for position, html in found}


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# ------------------------------------------------------------------ the protocol wizard


def test_the_protocol_cards_are_offered_from_the_wizard_and_the_catalogue(member_client, profile) -> None:
    cards = member_client.get("/pipelines/new/").content.decode()
    assert "Minimize, equilibrate, produce" in cards
    assert "minimization → equilibration → production x 3 · 5 steps" in cards
    assert f'href="{FORM_URL}"' in cards
    assert 'href="/pipelines/new/"' in member_client.get("/jobs/new/").content.decode()
    catalogue = member_client.get("/templates/").content.decode()
    assert f'href="{FORM_URL}"' in catalogue
    Protocol.objects.filter(slug=BUILTIN).update(is_retired=True)
    assert "Minimize, equilibrate, produce" not in member_client.get("/pipelines/new/").content.decode()
    assert member_client.get(FORM_URL).status_code == 404


def test_the_form_asks_each_value_once_and_each_stage_for_its_own(member_client, profile) -> None:
    page = member_client.get(FORM_URL).content.decode()
    temperature = re.search(r'<input[^>]*name="shared_temperature"[^>]*>', page).group(0)
    assert 'placeholder="300.0"' in temperature
    assert 'hx-post="/pipelines/new/min-equil-prod/check/"' in temperature
    assert "value=" not in temperature  # empty: the protocol's value stays unless the member gives one
    minimize = re.search(r'<input[^>]*name="shared_minimize_steps"[^>]*>', page).group(0)
    assert 'placeholder="1000"' in minimize
    assert re.search(r'<select[^>]*name="shared_ensemble"', page) is not None
    assert '<option value="" selected>as planned (NPT)</option>' in page
    # what the step plan sets on every step is not asked: output names, restart files, the first step; nor files
    for name in ("output_name", "first_step", "restart_coordinates", "structure", "start_coordinates"):
        assert f'name="shared_{name}"' not in page
    assert 'name="stage1_output_name"' not in page
    assert 'name="stage3_run_steps"' in page
    assert 'name="stage3_first_step"' not in page
    assert 'name="stage1_run_steps"' not in page  # the minimization's template has no such variable
    assert page.count('<details class="pipeline-stage-values"') == 3
    assert '<input type="checkbox" name="continue_on_timeout"' in page
    assert re.search(r'name="continue_on_timeout"[^>]*checked', page) is not None
    assert 'hx-post="/pipelines/new/min-equil-prod/preview/"' in page


def test_the_live_check_puts_each_error_next_to_its_field(member_client, profile) -> None:
    bad = filled(profile, shared_temperature="5000", stage3_run_steps="many", walltime="02:00:00")
    response = member_client.post(f"{FORM_URL}check/", bad, **HTMX)
    assert "VALUE_OUT_OF_RANGE" in error_slot(response.content, "shared_temperature")
    assert "VALUE_WRONG_TYPE" in error_slot(response.content, "stage3_run_steps")
    assert "TIME_OVER_LIMIT" in error_slot(response.content, "walltime")
    good = member_client.post(f"{FORM_URL}check/", filled(profile), **HTMX)
    assert error_slot(good.content, "shared_temperature") == error_slot(good.content, "walltime") == ""


def test_the_preview_shows_every_step_and_the_total_cost_and_creates_nothing(member_client, profile) -> None:
    response = member_client.post(f"{FORM_URL}preview/", filled(profile, shared_temperature="310"), **HTMX)
    page = response.content.decode()
    labels = re.findall(r"Step (\d): ([a-z0-9/ ]+?)\s*<span", page)
    assert labels == [
        ("1", "minimization"),
        ("2", "equilibration"),
        ("3", "production 1/3"),
        ("4", "production 2/3"),
        ("5", "production 3/3"),
    ]
    for position in range(1, 6):
        step = preview_step(page, position)
        assert "#SBATCH --partition=debug" in step
        assert re.search(r"(?i)temp\w*\s+310", step) is not None
    third = preview_step(page, 3)
    assert re.search(r"bincoordinates\s+equilibration\.coor", third) is not None
    assert "namd2 +p1 production_1.namd" in third  # the step's own config in the run's folder
    assert "/scratch/alice_t/min-equil-prod-00000000" in third
    total = re.search(r'<dl class="facts" id="pipeline-preview-total">(.*?)</dl>', page, re.S).group(1)
    assert "<dt>Core-hours</dt><dd>0.8335</dd>" in total  # 5 steps x 10 min x 1 core, each rounded up
    assert Pipeline.objects.count() == Job.objects.count() == 0


def test_a_render_error_is_shown_on_its_steps_only_with_its_code(member_client, profile) -> None:
    page = member_client.post(f"{FORM_URL}preview/", filled(profile, stage3_run_steps="0"), **HTMX).content.decode()
    for position in (1, 2):
        assert 'data-problems="0"' in preview_step(page, position)
    for position in (3, 4, 5):  # stage 3 is the production, run 3 times
        step = preview_step(page, position)
        assert 'data-problems="1"' in step
        assert "<code>VALUE_OUT_OF_RANGE</code> run_steps: must be between 1" in step
        assert " open>" in step.split("\n", 1)[0]  # a step with problems opens by itself
    over = member_client.post(f"{FORM_URL}preview/", filled(profile, walltime="02:00:00"), **HTMX).content.decode()
    assert "TIME_OVER_LIMIT" in over
    assert "#SBATCH" not in over
    assert Pipeline.objects.count() == 0


def test_a_good_post_creates_the_run_and_goes_to_its_inputs(member_client, member, profile) -> None:
    data = filled(profile, title="my water", shared_temperature="310", stage3_run_steps="200", shared_ensemble="")
    response = member_client.post(FORM_URL, data)
    pipeline = Pipeline.objects.get()
    steps = current_steps(pipeline)
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{steps[0].pk}/inputs/"
    assert (pipeline.owner, pipeline.title, pipeline.recipe_name) == (member, "my water", "cpu")
    assert pipeline.values == {"temperature": 310.0, "cell_x": 30.0, "cell_y": 30.0, "cell_z": 30.0}
    assert pipeline.stage_values == {"3": {"run_steps": 200}}
    assert pipeline.continue_on_timeout is True
    assert [step.values["run_steps"] for step in steps[1:]] == [5000, 200, 200, 200]
    inputs = member_client.get(response["Location"]).content.decode()
    assert "Inputs of the run “my water”" in inputs
    assert f'href="/pipelines/{pipeline.pk}/"' in inputs
    assert ">Submit the run to SLURM</button>" in inputs
    for name in ("system.psf", "system.pdb", "par_all36.prm"):
        assert f'data-upload-name="{name}"' in inputs
    assert 'data-upload-name="equilibration.coor"' not in inputs  # made by step 2, not uploaded


def test_a_service_refusal_on_post_is_shown_next_to_its_field_and_nothing_is_created(member_client, profile) -> None:
    LaunchRecipe.objects.create(profile=profile, name="gpu", kind="gpu", command="namd3 +p{cores} {config}")
    response = member_client.post(FORM_URL, filled(profile, recipe="gpu"))
    assert Pipeline.objects.count() == Job.objects.count() == 0
    assert "LAUNCH_COMMAND_INVALID" in error_slot(response.content, "recipe")
    assert "The run could not be created" not in response.content.decode()  # it is the recipe's, not the form's


def test_the_submit_of_the_runs_inputs_page_submits_the_run(member_client, member, profile) -> None:
    pipeline = new_run(member, profile)
    holder = current_steps(pipeline)[0]
    response = member_client.post(f"/jobs/{holder.pk}/submit/", follow=True)
    assert response.redirect_chain[-1][0] == f"/jobs/{holder.pk}/inputs/"
    assert "(INPUTS_NOT_READY)" in response.content.decode()
    Job.objects.filter(pipeline=pipeline).update(state=JobState.READY)
    Job.objects.filter(pk=holder.pk).update(state=JobState.READY)
    CredentialFactory(user=member, profile=profile)
    response = member_client.post(f"/jobs/{holder.pk}/submit/")
    assert response["Location"] == f"/pipelines/{pipeline.pk}/"
    assert {step.state for step in current_steps(pipeline)} == {JobState.SUBMITTING}


# ------------------------------------------------------------------ the list and the dashboard


def test_the_list_shows_each_run_with_its_state_and_progress(member_client, member, other_member, profile) -> None:
    running = new_run(member, profile, title="running run")
    set_steps(running, [C, C, R, P, P])
    theirs = copy_run(running, owner=other_member)
    page = member_client.get("/pipelines/").content.decode()
    row = re.search(rf'<tr id="pipeline-row-{running.pk}".*?</tr>', page, re.S).group(0)
    assert 'data-pipeline-state="RUNNING"' in row
    assert "<span data-progress>2/5</span>" in row
    assert "Minimize, equilibrate, produce" in row
    assert f"pipeline-row-{theirs.pk}" not in page
    assert 'hx-trigger="every 5s"' in page  # a run is active: the rows ask for themselves again
    assert '<a href="/pipelines/"' in page  # the nav's Pipelines
    set_steps(running, [C, C, C, C, C])
    done = member_client.get("/pipelines/", **HTMX).content.decode()
    assert done.strip().startswith('<tbody id="pipeline-rows">')
    assert "every 5s" not in done
    assert 'data-pipeline-state="COMPLETED"' in done


def test_a_lab_admin_lists_every_members_runs_with_their_owners(lab_admin, member, profile) -> None:
    run = new_run(member, profile)
    page = client_of(lab_admin).get("/pipelines/").content.decode()
    assert f"pipeline-row-{run.pk}" in page
    assert f"<td>{member.username}</td>" in page


def test_pages_of_25(member_client, member, profile) -> None:
    run = new_run(member, profile)
    for _ in range(26):
        copy_run(run)
    first = member_client.get("/pipelines/").content.decode()
    assert first.count('data-pipeline-row="') == 25
    assert 'href="?page=2" rel="next"' in first
    assert member_client.get("/pipelines/?page=2").content.decode().count('data-pipeline-row="') == 2


def test_the_list_costs_the_same_queries_for_2_or_25_runs(member_client, member, profile) -> None:
    run = new_run(member, profile)
    set_steps(run, [C, F, X, X, X])
    copy_run(run)
    member_client.get("/pipelines/")  # warm the session and the content-type caches
    with CaptureQueriesContext(connection) as two:
        assert member_client.get("/pipelines/").content.decode().count('data-pipeline-row="') == 2
    for _ in range(30):
        copy_run(run)
    with CaptureQueriesContext(connection) as many:
        assert member_client.get("/pipelines/").content.decode().count('data-pipeline-row="') == 25
    assert len(many.captured_queries) == len(two.captured_queries)


def test_the_dashboard_shows_the_newest_runs(member_client, member, profile) -> None:
    run = new_run(member, profile, title="dashboard run")
    set_steps(run, [C, R, P, P, P])
    page = member_client.get("/").content.decode()
    listed = re.search(r'<ul class="timeline" id="dashboard-pipelines">(.*?)</ul>', page, re.S).group(1)
    assert f'href="/pipelines/{run.pk}/">dashboard run</a>' in listed
    assert 'data-pipeline-state="RUNNING"' in listed
    assert "1/5 steps" in listed


# ------------------------------------------------------------------ a run's page


def test_a_failed_run_shows_its_graph_the_steps_cut_off_and_its_timeline(member_client, member, profile) -> None:
    run = new_run(member, profile)
    steps = set_steps(run, [C, F, X, X, X])
    page = member_client.get(f"/pipelines/{run.pk}/").content.decode()
    shown = boxes(page)
    assert shown[1].startswith("Step 1 minimization Completed")
    assert shown[2].startswith("Step 2 equilibration Failed")
    assert "Not run" not in shown[2]
    for position in (3, 4, 5):
        assert "Cancelled Not run: step 2 failed" in shown[position]
    assert page.count("pipeline-step-not-run") == 3
    assert f'href="/jobs/{steps[2].pk}/">production 1/3</a>' in page
    assert 'data-pipeline-state="FAILED"' in page
    assert "stopped at step 2" in page
    assert page.count('<tr id="timeline-job-') == 5
    assert re.search(rf'<tr id="timeline-job-{steps[1].pk}".*?<td>{steps[1].slurm_job_id}</td>', page, re.S)
    assert 'hx-trigger="every 5s"' not in page  # nothing active: no polling
    assert f'href="/pipelines/{run.pk}/resume/"' in page
    assert 'id="pipeline-submit"' not in page
    assert 'id="pipeline-cancel"' not in page
    assert 'id="pipeline-clone"' in page
    assert (
        f'data-url="/api/v1/pipelines/{run.pk}/energies?columns=TOTAL,POTENTIAL,KINETIC,TEMP,PRESSURE,VOLUME"' in page
    )
    assert 'data-active="false"' in page


def test_an_active_run_polls_until_it_settles(member_client, member, profile) -> None:
    run = new_run(member, profile)
    set_steps(run, [C, R, P, P, P])
    page = member_client.get(f"/pipelines/{run.pk}/").content.decode()
    assert f'hx-get="/pipelines/{run.pk}/live/" hx-trigger="every 5s"' in page
    assert 'data-active="true"' in page
    assert 'id="pipeline-cancel"' in page
    assert "now: step 2 (equilibration)" in page
    live = member_client.get(f"/pipelines/{run.pk}/live/", **HTMX)
    assert "HX-Trigger" not in live
    assert 'id="pipeline-state" class="job-state" hx-swap-oob="true"' in live.content.decode()
    set_steps(run, [C, C, C, C, C])
    settled = member_client.get(f"/pipelines/{run.pk}/live/", **HTMX)
    assert settled["HX-Trigger"] == "pipeline-settled"
    assert "every 5s" not in settled.content.decode()
    assert 'data-pipeline-state="COMPLETED"' in settled.content.decode()


def test_a_waiting_run_says_what_its_inputs_lack(member_client, member, profile) -> None:
    run = new_run(member, profile)
    page = member_client.get(f"/pipelines/{run.pk}/").content.decode()
    holder = current_steps(run)[0]
    assert "Upload system.psf" in page
    assert f'href="/jobs/{holder.pk}/inputs/"' in page
    assert re.search(r'<button type="submit" id="pipeline-submit" disabled', page) is not None
    response = member_client.post(f"/pipelines/{run.pk}/submit/", follow=True)
    assert "(INPUTS_NOT_READY)" in response.content.decode()
    assert {step.state for step in current_steps(run)} == {JobState.DRAFT}


def test_cancel_ends_a_waiting_run_at_once(member_client, member, profile) -> None:
    run = new_run(member, profile)
    response = member_client.post(f"/pipelines/{run.pk}/cancel/", follow=True)
    assert "The run is cancelled." in response.content.decode()
    assert {step.state for step in current_steps(run)} == {JobState.CANCELLED}
    assert 'data-pipeline-state="CANCELLED"' in response.content.decode()


def test_the_timeline_shows_a_continuation_and_a_resume(member_client, member, profile) -> None:
    run = new_run(member, profile)
    first, *_ = set_steps(run, [JobState.TIMEOUT, P, P, P, P])
    continuation = Job.objects.get(pk=first.pk)
    continuation.pk, continuation.uuid, continuation.parent_id = None, uuid.uuid4(), first.pk
    continuation.state, continuation.slurm_job_id = JobState.RUNNING, str(next(SLURM_IDS))
    continuation.save()
    page = member_client.get(f"/pipelines/{run.pk}/").content.decode()
    row = re.search(rf'<tr id="timeline-job-{continuation.pk}".*?</tr>', page, re.S).group(0)
    assert 'data-kind="continuation"' in row
    assert f"continues job {first.pk} after its timeout" in row
    old = re.search(rf'<tr id="timeline-job-{first.pk}" class="muted".*?</tr>', page, re.S).group(0)
    assert "replaced by a newer job" in old
    assert "2 jobs" in boxes(page)[1]


def test_resume_asks_for_the_values_to_change_then_goes_to_the_new_inputs(member_client, member, profile) -> None:
    run = new_run(member, profile)
    failed = set_steps(run, [C, F, X, X, X])
    form = member_client.get(f"/pipelines/{run.pk}/resume/").content.decode()
    assert "Step 2 (equilibration) ended" in form
    temperature = re.search(r'<input[^>]*name="shared_temperature"[^>]*>', form).group(0)
    assert 'placeholder="300.0"' in temperature
    assert 'name="shared_minimize_steps"' in form  # the equilibration minimizes too
    assert '<details class="pipeline-stage-values" id="stage-values-1"' not in form  # step 1 is not run again
    bad = member_client.post(f"/pipelines/{run.pk}/resume/", {"shared_temperature": "-4"})
    assert "VALUE_OUT_OF_RANGE" in error_slot(bad.content, "shared_temperature")
    response = member_client.post(f"/pipelines/{run.pk}/resume/", {"shared_temperature": "305"})
    steps = current_steps(run)
    assert steps[0].pk == failed[0].pk
    assert steps[1].pk != failed[1].pk
    assert response["Location"] == f"/jobs/{steps[1].pk}/inputs/"
    assert steps[2].values["temperature"] == 305.0
    assert Pipeline.objects.get(pk=run.pk).values["temperature"] == 305.0
    again = member_client.get(f"/pipelines/{run.pk}/resume/", follow=True)
    assert "(PIPELINE_NOT_RESUMABLE)" in again.content.decode()


def test_clone_makes_a_new_run_of_ones_own(lab_admin, member, profile) -> None:
    run = new_run(member, profile, title="theirs")
    response = client_of(lab_admin).post(f"/pipelines/{run.pk}/clone/")
    copy = Pipeline.objects.exclude(pk=run.pk).get()
    assert (copy.owner, copy.title, copy.values) == (lab_admin, "theirs (copy)", run.values)
    assert response["Location"] == f"/jobs/{current_steps(copy)[0].pk}/inputs/"


def test_a_steps_job_page_links_back_to_its_run(member_client, member, profile) -> None:
    run = new_run(member, profile, title="water run")
    third = current_steps(run)[2]
    page = member_client.get(f"/jobs/{third.pk}/").content.decode()
    assert (
        f'<p id="job-pipeline">Step 3 (production 1/3) of the run <a href="/pipelines/{run.pk}/">water run</a></p>'
        in page
    )


# ------------------------------------------------------------------ access


ACTIONS = ("submit", "cancel", "resume", "clone")


def test_another_members_run_is_not_found_on_every_page(member, other_member, profile) -> None:
    run = new_run(member, profile)
    set_steps(run, [C, F, X, X, X])
    client = client_of(other_member)
    for path in ("", "live/", "resume/"):
        assert client.get(f"/pipelines/{run.pk}/{path}").status_code == 404
    for action in ACTIONS:
        assert client.post(f"/pipelines/{run.pk}/{action}/").status_code == 404
    assert client.get(f"/pipelines/{run.pk + 999}/").status_code == 404
    assert f"pipeline-row-{run.pk}" not in client.get("/pipelines/").content.decode()


def test_a_lab_admin_sees_a_members_run_but_cannot_act_on_it(lab_admin, member, profile) -> None:
    run = new_run(member, profile)
    set_steps(run, [C, F, X, X, X])
    client = client_of(lab_admin)
    page = client.get(f"/pipelines/{run.pk}/").content.decode()
    assert "data-not-yours" in page
    assert f'href="/pipelines/{run.pk}/resume/"' not in page
    assert 'id="pipeline-clone"' in page
    assert client.get(f"/pipelines/{run.pk}/live/").status_code == 200
    assert client.get(f"/pipelines/{run.pk}/resume/").status_code == 403
    for action in ("submit", "cancel", "resume"):
        assert client.post(f"/pipelines/{run.pk}/{action}/").status_code == 403
    assert len(current_steps(run)) == 5
    assert Job.objects.filter(pipeline=run).count() == 5  # nothing resumed


def test_an_anonymous_visitor_is_sent_to_log_in(member, profile) -> None:
    run = new_run(member, profile)
    response = Client().get(f"/pipelines/{run.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


# ------------------------------------------------------------------ query counts


@pytest.mark.parametrize(
    ("states_of", "label"),
    [
        (lambda n: [C, F] + [X] * (n - 2), "failed"),
        (lambda n: [C, C, R] + [P] * (n - 3), "running"),
        (lambda n: [D] * n, "waiting for its inputs"),
    ],
)
def test_a_runs_page_costs_the_same_queries_for_5_or_12_steps(member_client, member, profile, states_of, label) -> None:
    short = new_run(member, profile)
    long = new_run(member, profile, protocol=long_protocol(10).slug)
    set_steps(short, states_of(5))
    set_steps(long, states_of(12))
    member_client.get(f"/pipelines/{short.pk}/")  # warm the session and the content-type caches
    counts = {}
    for run, size in ((short, 5), (long, 12)):
        with CaptureQueriesContext(connection) as queries:
            page = member_client.get(f"/pipelines/{run.pk}/").content.decode()
        assert len(boxes(page)) == size
        counts[size] = len(queries.captured_queries)
    assert counts[5] == counts[12], label


def test_the_total_is_the_sum_of_the_steps(member_client, profile) -> None:
    page = member_client.post(f"{FORM_URL}preview/", filled(profile, walltime="00:30:00"), **HTMX).content.decode()
    each = [Decimal(su) for su in re.findall(r"<dt>Cost</dt><dd>[0-9.]+ core-hours, ([0-9.]+) SU</dd>", page)]
    total = re.search(r"<dt>Service units</dt><dd>([0-9.]+)</dd>", page).group(1)
    assert len(each) == 5
    assert Decimal(total) == sum(each)
