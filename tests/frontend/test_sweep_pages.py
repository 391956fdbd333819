"""The sweep pages: the wizard's sweep path (from a template's and a protocol's wizard: the points, the live check
with the services' codes, the preview of the first point and the total cost, create), the list, a sweep's page
(rows, polling, the inputs uploaded once, submit / cancel / retry, CSV and plot), the links back from a point's
pages, access and query counts. Real PostgreSQL; no cluster is contacted."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from jobs.models import Job, JobProgress, JobState, Pipeline, Sweep, SweepPoint
from jobs.namd_log import LogProgress
from jobs.sweep_points import SweepAxis
from templates_app.builtin import SEED, body
from templates_app.models import Template
from templates_app.services import save_template_version
from tests.factories import CredentialFactory, builtin_version
from tests.frontend.pipeline_runs import set_steps
from tests.frontend.sweeps_made import (
    inputs_in,
    logged,
    new_protocol_sweep,
    new_sweep,
    point_jobs,
    protocol_sweep_form,
    set_points,
    sweep_form,
)
from tests.frontend.test_pipeline_pages import C, D, F, P, R, X

pytestmark = pytest.mark.django_db
FORM_URL = "/sweeps/new/template/npt-equilibration/"
PROTOCOL_FORM_URL = "/sweeps/new/protocol/min-equil-prod/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def error_slot(content: bytes, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="id_{field}_error"[^>]*>(.*?)</p>', content.decode(), re.S)
    assert match is not None, f"no error slot for {field}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def point_row(page: str, index: int) -> str:
    match = re.search(rf'<tr id="point-{index}" data-point="{index}">(.*?)</tr>', page, re.S)
    assert match is not None, f"no row for point {index}"
    return text_of(match.group(1))


def page_ns(job: Job) -> str:
    """The ns/day the page shows for a job's log (two decimals)."""
    return f"{LogProgress.from_state(JobProgress.objects.get(job=job).log_state).ns_per_day:.2f}"


def seedless_template() -> Template:
    """A template like the vacuum minimization without a `seed` variable (replicas cannot vary it)."""
    version = builtin_version("vacuum-minimization")
    template = Template.objects.create(name="No seed", slug="no-seed", category=Template.Category.MINIMIZATION)
    seedless = re.sub(r"\{% if seed %\}.*\n\{% endif %\}", "", body("vacuum-minimization"))
    variables = [v for v in version.variables if v["name"] != SEED["name"]]
    save_template_version(template=template, body=seedless, variables=variables, user=None)
    return template


# ------------------------------------------------------------------ the wizard's sweep path


def test_a_templates_and_a_protocols_wizard_offer_to_run_as_a_sweep(member_client, profile) -> None:
    job_page = member_client.get("/jobs/new/npt-equilibration/").content.decode()
    assert f'<a href="{FORM_URL}" id="run-as-sweep">Run as a sweep</a>' in job_page
    run_page = member_client.get("/pipelines/new/min-equil-prod/").content.decode()
    assert f'<a href="{PROTOCOL_FORM_URL}" id="run-as-sweep">Run as a sweep</a>' in run_page
    choose = member_client.get("/sweeps/new/").content.decode()
    assert f'href="{FORM_URL}"' in choose
    assert f'href="{PROTOCOL_FORM_URL}"' in choose
    assert '<a href="/sweeps/">Sweeps</a>' in job_page  # the nav, next to Pipelines
    Template.objects.filter(slug="npt-equilibration").update(is_retired=True)
    assert member_client.get(FORM_URL).status_code == 404
    assert member_client.get("/sweeps/new/recipe/npt-equilibration/").status_code == 404


def test_the_form_asks_for_the_points_beside_the_wizards_fields(member_client, profile) -> None:
    page = member_client.get(FORM_URL).content.decode()
    assert re.search(r'<input type="radio" name="mode" value="grid"[^>]*checked', page) is not None
    assert 'name="mode" value="list"' in page
    assert 'name="mode" value="replicas"' in page
    variables = re.search(r'<select name="axis0_name".*?</select>', page, re.S).group(0)
    assert '<option value="temperature">Temperature (K)</option>' in variables
    assert 'value="structure"' not in variables  # a file is uploaded once, not swept
    assert 'name="axis1_values"' in page
    assert 'name="axis2_values"' not in page  # two rows at first
    for name in ("replicas", "base_seed", "max_running", "submit", "var_temperature", "partition"):
        assert f'name="{name}"' in page
    assert 'name="continue_on_timeout"' not in page  # a sweep's points do not continue after a timeout
    assert f'hx-post="{FORM_URL}check/"' in re.search(r'<input type="text" name="axis0_values"[^>]*>', page).group(0)
    assert f'hx-post="{FORM_URL}preview/"' in page
    protocol = member_client.get(PROTOCOL_FORM_URL).content.decode()
    assert '<option value="temperature">Temperature (K)</option>' in protocol
    assert 'name="stage3_run_steps"' in protocol  # the protocol wizard's per-stage values


def test_add_a_variable_gives_one_more_row_keeping_what_was_typed(member_client, profile) -> None:
    typed = {"axis_rows": "2", "axis0_name": "temperature", "axis0_values": "300, 310", "mode": "grid"}
    response = member_client.get(FORM_URL, typed, HTTP_HX_TARGET="sweep-axes", **HTMX)
    section = response.content.decode()
    assert '<input type="hidden" name="axis_rows" value="3"' in section
    assert 'name="axis2_name"' in section
    assert re.search(r'name="axis0_values" value="300, 310"', section) is not None
    assert "<html" not in section


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"mode": "list"}, "axis_rows", "SWEEP_AXES_UNEQUAL"),
        ({"axis1_values": ",".join(str(6 + n / 20) for n in range(170))}, "axis_rows", "SWEEP_TOO_MANY_POINTS"),
        ({"axis1_name": "temperature", "axis1_values": "330"}, "axis1_name", "SWEEP_AXIS_DUPLICATE"),
        ({"axis0_name": "", "axis0_values": "", "axis1_name": "", "axis1_values": ""}, "axis_rows", "SWEEP_NO_AXES"),
        ({"axis0_values": "300, 300"}, "axis_rows", "SWEEP_POINTS_REPEAT"),
        ({"axis0_name": ""}, "axis0_name", "VALUE_REQUIRED"),
        ({"axis0_values": "300, 5000"}, "axis0_values", "VALUE_OUT_OF_RANGE"),
        ({"mode": "replicas", "replicas": "3"}, "base_seed", "SWEEP_BASE_SEED_INVALID"),
        ({"mode": "replicas", "replicas": "501", "base_seed": "7"}, "replicas", "SWEEP_TOO_MANY_POINTS"),
        ({"mode": "replicas", "base_seed": "7"}, "replicas", "SWEEP_REPLICAS_INVALID"),
        ({"max_running": "0"}, "max_running", "VALUE_OUT_OF_RANGE"),
    ],
)
def test_the_live_check_shows_the_services_codes_beside_the_fields(member_client, profile, changes, field, code):
    response = member_client.post(f"{FORM_URL}check/", sweep_form(profile, **changes), **HTMX)
    assert code in error_slot(response.content, field)


def test_a_good_form_has_no_errors_and_a_swept_variable_needs_no_value_of_its_own(member_client, profile) -> None:
    response = member_client.post(f"{FORM_URL}check/", sweep_form(profile, var_temperature=""), **HTMX)
    slots = re.findall(r'<p class="field-error" id="([^"]+)"[^>]*>(.*?)</p>', response.content.decode(), re.S)
    assert len(slots) > 20
    assert [slot for slot, text in slots if text.strip()] == []
    not_swept = member_client.post(f"{FORM_URL}check/", sweep_form(profile, var_damping="999"), **HTMX)
    assert "VALUE_OUT_OF_RANGE" in error_slot(not_swept.content, "var_damping")  # a value not swept keeps its checks
    replicas = sweep_form(profile, mode="replicas", replicas="4", base_seed="7", var_seed="-3")
    assert error_slot(member_client.post(f"{FORM_URL}check/", replicas, **HTMX).content, "var_seed") == ""


def test_replicas_of_a_template_without_a_seed_are_refused_beside_the_mode(member_client, profile) -> None:
    template = seedless_template()
    data = {**sweep_form(profile, mode="replicas", replicas="3", base_seed="7"), "var_minimize_steps": "100"}
    response = member_client.post(f"/sweeps/new/template/{template.slug}/check/", data, **HTMX)
    assert "SWEEP_NO_SEED_VARIABLE" in error_slot(response.content, "mode")


def test_the_preview_renders_the_first_point_and_costs_every_point_and_creates_nothing(member_client, profile):
    page = member_client.post(f"{FORM_URL}preview/", sweep_form(profile), **HTMX).content.decode()
    total = re.search(r'<dl class="facts" id="sweep-preview-total">(.*?)</dl>', page, re.S).group(1)
    assert '<dt>Points</dt><dd data-points="6">6</dd>' in total
    one = Decimal(re.search(r"<h3>Cost estimate</h3>.*?<dt>Service units</dt><dd>([0-9.]+)</dd>", page, re.S).group(1))
    assert Decimal(re.search(r"<dt>Service units</dt><dd>([0-9.]+)</dd>", total).group(1)) == 6 * one
    config = re.search(r'<pre id="wizard-preview-config">(.*?)</pre>', page, re.S).group(1)
    assert re.search(r"^temperature\s+300\.0$", config, re.M) is not None  # the first point: 300 K, cutoff 10
    assert re.search(r"^cutoff\s+10\.0$", config, re.M) is not None
    script = re.search(r'<pre id="wizard-preview-script">(.*?)</pre>', page, re.S).group(1)
    assert "#SBATCH --job-name=np-000000000000-water-grid-0-temperature" in script
    points = re.findall(r"<li>(.*?)</li>", re.search(r'id="sweep-preview-points">(.*?)</ol>', page, re.S).group(1))
    assert [text_of(point) for point in points][:2] == [
        "temperature = 300.0 , cutoff = 10.0",
        "temperature = 300.0 , cutoff = 12.0",
    ]
    refused = member_client.post(f"{FORM_URL}preview/", sweep_form(profile, mode="list"), **HTMX).content.decode()
    assert "SWEEP_AXES_UNEQUAL" in refused
    assert "sweep-preview-total" not in refused
    assert Sweep.objects.count() == Job.objects.count() == 0


def test_a_protocol_sweeps_preview_shows_the_first_points_run_and_costs_every_run(member_client, profile) -> None:
    data = protocol_sweep_form(profile)
    page = member_client.post(f"{PROTOCOL_FORM_URL}preview/", data, **HTMX).content.decode()
    assert page.count('<details class="pipeline-preview-step"') == 5
    run = Decimal(
        re.search(r'id="pipeline-preview-total">.*?<dt>Service units</dt><dd>([0-9.]+)</dd>', page, re.S).group(1)
    )
    total = re.search(r'id="sweep-preview-total">(.*?)</dl>', page, re.S).group(1)
    assert '<dd data-points="2">2</dd>' in total
    assert Decimal(re.search(r"<dt>Service units</dt><dd>([0-9.]+)</dd>", total).group(1)) == 2 * run
    assert re.search(r"langevinTemp\s+300\.0", page) is not None
    assert Pipeline.objects.count() == 0


def test_a_protocol_sweeps_values_are_checked_by_its_stages_and_replicas_get_their_seeds(member_client, profile):
    bad = member_client.post(f"{PROTOCOL_FORM_URL}check/", protocol_sweep_form(profile, axis0_values="300, -5"), **HTMX)
    assert "-5: must be between 0 and 1000 K" in error_slot(bad.content, "axis0_values")
    replicas = protocol_sweep_form(profile, mode="replicas", replicas="3", base_seed="42")
    page = member_client.post(f"{PROTOCOL_FORM_URL}preview/", replicas, **HTMX).content.decode()
    assert '<dd data-points="3">3</dd>' in page
    seed = re.search(r"<li><code>seed = ([0-9]+)</code></li>", page).group(1)
    assert re.search(rf"^seed\s+{seed}$", page, re.M) is not None  # the first replica's seed in its configs
    assert page.count('<details class="pipeline-preview-step"') == 5


def test_create_goes_to_the_sweep_page_where_the_inputs_are_uploaded_once(member_client, member, profile) -> None:
    response = member_client.post(FORM_URL, sweep_form(profile, var_temperature="", submit="on"))
    sweep = Sweep.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/sweeps/{sweep.pk}/"
    assert (sweep.owner, sweep.title, sweep.mode, sweep.max_running) == (member, "water grid", "grid", 2)
    assert sweep.axes == [
        {"name": "temperature", "values": [300.0, 310.0, 320.0]},
        {"name": "cutoff", "values": [10.0, 12.0]},
    ]
    jobs = point_jobs(sweep)
    assert [job.values["temperature"] for job in jobs] == [300.0, 300.0, 310.0, 310.0, 320.0, 320.0]
    assert all(job.submit_when_ready for job in jobs)
    page = member_client.get(response["Location"]).content.decode()
    assert "Created the sweep “water grid”" in page
    assert f'data-upload-url="/api/v1/jobs/{jobs[0].pk}/uploads/__name__"' in page
    assert 'data-upload-name="system.psf"' in page
    assert f'<form method="post" action="/sweeps/{sweep.pk}/submit/">' in page  # the status's submit: the sweep's
    assert ">Submit the sweep to SLURM</button>" in page
    assert 'id="sweep-submit"' not in page  # while the inputs may change, their section is where to submit
    assert '<script src="/static/frontend/upload.js" defer></script>' in page
    inputs = member_client.get(f"/jobs/{jobs[0].pk}/inputs/").content.decode()
    assert "Inputs of the sweep “water grid”" in inputs
    assert f'href="/sweeps/{sweep.pk}/"' in inputs
    assert 'name="submit_when_ready"' not in inputs  # the sweep's points start from the sweep's submit


def test_a_protocol_sweep_is_created_with_a_run_per_point(member_client, profile) -> None:
    data = protocol_sweep_form(profile)
    response = member_client.post(PROTOCOL_FORM_URL, data)
    sweep = Sweep.objects.get()
    assert response["Location"] == f"/sweeps/{sweep.pk}/"
    runs = [point.pipeline for point in SweepPoint.objects.filter(sweep=sweep).order_by("index")]
    assert [run.values["temperature"] for run in runs] == [300.0, 310.0]
    page = member_client.get(response["Location"]).content.decode()
    holder = runs[0].steps.order_by("position").first()
    assert f'data-upload-url="/api/v1/jobs/{holder.pk}/uploads/__name__"' in page  # the first run's first step
    inputs = member_client.get(f"/jobs/{holder.pk}/inputs/").content.decode()
    assert "Inputs of the sweep “water run”" in inputs
    assert '<th scope="col">Stage</th>' in page
    assert "minimization 0/5" in point_row(page, 1)
    assert f'href="/pipelines/{runs[1].pk}/">run {runs[1].pk}</a>' in page


def test_a_points_rendering_refusal_names_the_point_and_nothing_is_created(member_client, profile) -> None:
    """The values pass their own checks (the variable allows a negative timestep) but NAMD refuses the config."""
    version = builtin_version("npt-equilibration")
    variables = [dict(v, minimum=-4.0) if v["name"] == "timestep" else v for v in version.variables]
    loose = Template.objects.create(name="Loose", slug="loose", category=version.template.category)
    save_template_version(template=loose, body=body("npt-equilibration"), variables=variables, user=None)
    data = sweep_form(profile, axis_rows="1", axis0_name="timestep", axis0_values="1, -1", axis1_name="")
    response = member_client.post(f"/sweeps/new/template/{loose.slug}/", data)
    page = response.content.decode()
    assert response.status_code == 200
    assert "The sweep could not be created:" in page
    assert "Point 1 (timestep=-1.0): line 13: &#x27;timestep&#x27; takes a number ≥ 0" in page
    assert "<code>NAMD_VALUE_OUT_OF_RANGE</code>" in page
    assert Sweep.objects.count() == Job.objects.count() == 0


# ------------------------------------------------------------------ a sweep's page


def test_the_rows_show_each_points_values_state_progress_and_final_energies(member_client, member, profile) -> None:
    sweep = new_sweep(member, profile, max_running=2)
    jobs = set_points(sweep, [C, C, F, R, P, D])
    logged(jobs[0])
    logged(jobs[1], temperature_shift=2.0)
    page = member_client.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert '<th scope="col" class="num">temperature</th><th scope="col" class="num">cutoff</th>' in page
    assert (
        point_row(page, 0)
        == f"0 300.0 10.0 Completed 400 {page_ns(jobs[0])} 12.1928 10.1302 2.0626 345.97 job {jobs[0].pk}"
    )
    assert "347.97" in point_row(page, 1)
    assert "Failed NAMD_FAILED" in point_row(page, 2)
    assert point_row(page, 5).startswith("5 320.0 12.0 Draft — — —")
    state = text_of(re.search(r'<div id="sweep-state".*?</div>', page, re.S).group(0))
    assert state == "6 points 1 draft 1 pending 1 running 2 completed 1 failed"
    assert f'hx-get="/sweeps/{sweep.pk}/live/?page=1" hx-trigger="every 5s"' in page  # points are on their way
    assert 'data-active="true"' in page
    assert f'href="/api/v1/sweeps/{sweep.pk}/csv"' in page
    assert f'data-url="/api/v1/sweeps/{sweep.pk}/plot"' in page
    assert '<option value="mean_temperature">Mean temperature over the run</option>' in page
    assert '<option value="cutoff">cutoff</option>' in page
    assert '<script id="sweep-axes-data" type="application/json">[{"name": "temperature"' in page
    assert '<script src="/static/frontend/sweep_plot.js" defer></script>' in page


def test_the_live_panel_polls_until_nothing_moves_then_tells_the_plot(member_client, member, profile) -> None:
    sweep = new_sweep(member, profile, axes=(SweepAxis("temperature", (300.0, 310.0)),))
    set_points(sweep, [C, R])
    live = member_client.get(f"/sweeps/{sweep.pk}/live/", **HTMX)
    assert "HX-Trigger" not in live
    assert 'id="sweep-state" class="job-state" hx-swap-oob="true"' in live.content.decode()
    assert (
        'id="sweep-actions" class="card" aria-labelledby="sweep-actions-heading" hx-swap-oob="true"'
        in live.content.decode()
    )
    Job.objects.filter(pk=point_jobs(sweep)[1].pk).update(state=C)  # ended, its results not back yet: still moving
    assert "HX-Trigger" not in member_client.get(f"/sweeps/{sweep.pk}/live/", **HTMX)
    set_points(sweep, [C, C])
    settled = member_client.get(f"/sweeps/{sweep.pk}/live/", **HTMX)
    assert settled["HX-Trigger"] == "sweep-settled"
    assert "every 5s" not in settled.content.decode()


def test_submit_says_what_the_inputs_lack_then_starts_the_points_through_the_gate(member_client, member, profile):
    sweep = new_sweep(member, profile, max_running=2)
    response = member_client.post(f"/sweeps/{sweep.pk}/submit/", follow=True)
    assert response.redirect_chain == [(f"/sweeps/{sweep.pk}/", 302)]
    assert "(INPUTS_NOT_READY)" in response.content.decode()
    CredentialFactory(user=member, profile=profile)
    holder = inputs_in(point_jobs(sweep)[0])
    response = member_client.post(f"/sweeps/{sweep.pk}/submit/", follow=True)
    assert "Submitted: the points go to SLURM, at most 2 at a time" in response.content.decode()
    jobs = point_jobs(sweep)
    assert (jobs[0].pk, jobs[0].state) == (holder.pk, JobState.SUBMITTING)
    assert [job.submit_when_ready for job in jobs[1:]] == [True] * 5  # they start once their copies are in
    assert "1 submitting" in text_of(
        re.search(r'<div id="sweep-state".*?</div>', response.content.decode(), re.S).group(0)
    )


def test_cancel_ends_the_points_not_yet_sent_at_once(member_client, member, profile) -> None:
    sweep = new_sweep(member, profile)
    response = member_client.post(f"/sweeps/{sweep.pk}/cancel/", follow=True)
    assert "The sweep is cancelled." in response.content.decode()
    assert {job.state for job in point_jobs(sweep)} == {JobState.CANCELLED}
    assert 'id="sweep-cancel"' not in response.content.decode()
    again = member_client.post(f"/sweeps/{sweep.pk}/cancel/", follow=True)
    assert "Every point of this sweep has ended. (SWEEP_ALREADY_ENDED)" in again.content.decode()
    submit = member_client.post(f"/sweeps/{sweep.pk}/submit/", follow=True)
    assert submit.status_code == 200
    assert "(SWEEP_CANCELLED)" in submit.content.decode()


def test_retry_gives_the_points_that_failed_new_jobs(member_client, member, profile) -> None:
    sweep = new_sweep(member, profile, axes=(SweepAxis("temperature", (300.0, 310.0, 320.0)),))
    nothing = member_client.post(f"/sweeps/{sweep.pk}/retry/", follow=True)
    assert "(SWEEP_NOTHING_TO_RETRY)" in nothing.content.decode()
    CredentialFactory(user=member, profile=profile)
    old = set_points(sweep, [C, F, X])
    page = member_client.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert 'id="sweep-retry"' in page
    assert 'id="sweep-submit"' not in page
    assert 'id="sweep-cancel"' not in page
    response = member_client.post(f"/sweeps/{sweep.pk}/retry/", follow=True)
    assert "The points that did not complete run again" in response.content.decode()
    jobs = point_jobs(sweep)
    assert jobs[0].pk == old[0].pk
    assert [(job.parent_id, job.state, job.submit_when_ready) for job in jobs[1:]] == [
        (old[1].pk, JobState.DRAFT, True),
        (old[2].pk, JobState.DRAFT, True),
    ]


def test_the_csv_and_the_plot_the_page_links_answer_with_the_session(member_client, member, profile) -> None:
    sweep = new_sweep(member, profile)
    jobs = set_points(sweep, [C] * 6)
    for shift, job in enumerate(jobs):
        logged(job, temperature_shift=float(shift))
    csv = member_client.get(f"/api/v1/sweeps/{sweep.pk}/csv")
    assert csv["Content-Disposition"] == f'attachment; filename="sweep-{sweep.pk}.csv"'
    assert len(csv.content.decode().splitlines()) == 7
    plot = member_client.get(f"/api/v1/sweeps/{sweep.pk}/plot?figure=temperature&axis=temperature").json()
    assert [series["label"] for series in plot["series"]] == ["cutoff=10.0", "cutoff=12.0"]
    assert plot["series"][0]["points"] == [[300.0, 345.9728], [310.0, 347.9728], [320.0, 349.9728]]


# ------------------------------------------------------------------ the list, the dashboard, the links back


def test_the_list_shows_each_sweep_with_its_kind_points_and_states(member_client, member, other_member, profile):
    sweep = new_sweep(member, profile, title="temperatures")
    set_points(sweep, [C, C, F, R, D, D])
    runs = new_protocol_sweep(member, profile, axes=(SweepAxis("temperature", (300.0, 310.0)),), title="runs")
    theirs = new_sweep(other_member, profile, axes=(SweepAxis("temperature", (300.0,)),))
    page = member_client.get("/sweeps/").content.decode()
    row = text_of(re.search(rf'<tr id="sweep-row-{sweep.pk}".*?</tr>', page, re.S).group(0))
    assert row.startswith(
        "temperatures template Explicit-solvent NPT equilibration v1 6 2 draft 1 running 2 completed 1 failed"
    )
    protocol_row = text_of(re.search(rf'<tr id="sweep-row-{runs.pk}".*?</tr>', page, re.S).group(0))
    assert protocol_row.startswith("runs protocol Minimize, equilibrate, produce 2 2 draft")
    assert f"sweep-row-{theirs.pk}" not in page
    assert 'hx-trigger="every 5s"' in page  # a point runs: the rows ask for themselves again
    set_points(sweep, [C] * 6)
    rows = member_client.get("/sweeps/", **HTMX).content.decode()
    assert rows.strip().startswith('<tbody id="sweep-rows">')
    assert "every 5s" not in rows


def test_the_list_comes_in_pages_of_25_at_the_same_queries(member_client, member, profile) -> None:
    for _ in range(2):
        new_sweep(member, profile, axes=(SweepAxis("temperature", (300.0, 310.0)),))
    new_protocol_sweep(member, profile, axes=(SweepAxis("temperature", (300.0,)),))
    member_client.get("/sweeps/")  # warm the session and the content-type caches
    with CaptureQueriesContext(connection) as few:
        assert member_client.get("/sweeps/").content.decode().count('data-sweep-row="') == 3
    for _ in range(24):
        new_sweep(member, profile, axes=(SweepAxis("temperature", (300.0,)),))
    new_protocol_sweep(member, profile, axes=(SweepAxis("temperature", (300.0, 310.0)),))
    with CaptureQueriesContext(connection) as many:
        first = member_client.get("/sweeps/").content.decode()
    assert first.count('data-sweep-row="') == 25
    assert 'href="?page=2" rel="next"' in first
    assert member_client.get("/sweeps/?page=2").content.decode().count('data-sweep-row="') == 3
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_dashboard_shows_the_newest_sweeps(member_client, member, profile) -> None:
    sweep = new_sweep(member, profile, title="dashboard sweep")
    set_points(sweep, [C, R, D, D, D, D])
    page = member_client.get("/").content.decode()
    listed = text_of(re.search(r'<ul class="timeline" id="dashboard-sweeps">(.*?)</ul>', page, re.S).group(1))
    assert listed.startswith("dashboard sweep : 6 points 4 draft 1 running 1 completed")
    assert f'href="/sweeps/{sweep.pk}/">dashboard sweep</a>' in page


def test_a_points_job_page_and_run_page_link_back_to_the_sweep(member_client, member, profile) -> None:
    sweep = new_sweep(member, profile, title="water grid")
    job = point_jobs(sweep)[3]
    page = member_client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'<p id="job-sweep">Point 3 of the sweep <a href="/sweeps/{sweep.pk}/">water grid</a></p>' in page
    runs = new_protocol_sweep(member, profile, axes=(SweepAxis("temperature", (300.0, 310.0)),), title="runs")
    run = SweepPoint.objects.get(sweep=runs, index=1).pipeline
    run_page = member_client.get(f"/pipelines/{run.pk}/").content.decode()
    assert f'<p id="pipeline-sweep">Point 1 of the sweep <a href="/sweeps/{runs.pk}/">runs</a></p>' in run_page
    step = member_client.get(f"/jobs/{run.steps.order_by('position').last().pk}/").content.decode()
    assert f'Its run is point 1 of the sweep <a href="/sweeps/{runs.pk}/">runs</a>' in step
    plain = member_client.get(f"/pipelines/{SweepPoint.objects.get(sweep=runs, index=0).pipeline_id}/")
    assert plain.status_code == 200


# ------------------------------------------------------------------ access


ACTIONS = ("submit", "cancel", "retry")


def test_another_members_sweep_is_not_found_on_every_page_and_action(member, other_member, profile) -> None:
    sweep = new_sweep(member, profile)
    client = client_of(other_member)
    for path in ("", "live/"):
        assert client.get(f"/sweeps/{sweep.pk}/{path}").status_code == 404
    for action in ACTIONS:
        assert client.post(f"/sweeps/{sweep.pk}/{action}/").status_code == 404
    assert client.get(f"/sweeps/{sweep.pk + 999}/").status_code == 404
    assert f"sweep-row-{sweep.pk}" not in client.get("/sweeps/").content.decode()
    assert client.get(f"/jobs/{point_jobs(sweep)[0].pk}/inputs/").status_code == 404
    assert {job.state for job in point_jobs(sweep)} == {JobState.DRAFT}


def test_a_lab_admin_sees_a_members_sweep_but_cannot_act_on_it(lab_admin, member, profile) -> None:
    sweep = new_sweep(member, profile)
    set_points(sweep, [C, F, R, D, D, D])
    client = client_of(lab_admin)
    page = client.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert "data-not-yours" in page
    for button in ("sweep-submit", "sweep-cancel", "sweep-retry"):
        assert f'id="{button}"' not in page
    assert 'id="uploads"' not in page  # nor the upload section
    assert f'href="/api/v1/sweeps/{sweep.pk}/csv"' in page
    assert client.get(f"/sweeps/{sweep.pk}/live/").status_code == 200
    assert f"<td>{member.username}</td>" in client.get("/sweeps/").content.decode()
    for action in ACTIONS:
        response = client.post(f"/sweeps/{sweep.pk}/{action}/")
        assert response.status_code == 403
        assert "SWEEP_NOT_YOURS" in response.content.decode()
    assert [job.state for job in point_jobs(sweep)] == [C, F, R, D, D, D]


def test_an_anonymous_visitor_is_sent_to_log_in(member, profile) -> None:
    sweep = new_sweep(member, profile)
    for path in (f"/sweeps/{sweep.pk}/", "/sweeps/", FORM_URL):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_actions_are_posts(member_client, member, profile) -> None:
    sweep = new_sweep(member, profile)
    for action in ACTIONS:
        assert member_client.get(f"/sweeps/{sweep.pk}/{action}/").status_code == 405
    assert {job.state for job in point_jobs(sweep)} == {JobState.DRAFT}


# ------------------------------------------------------------------ query counts


def test_a_sweeps_page_costs_the_same_queries_for_10_or_200_points(member_client, member, profile) -> None:
    counts = {}
    for size in (10, 200):
        sweep = new_sweep(member, profile, axes=(SweepAxis("temperature", tuple(100.0 + 2 * n for n in range(size))),))
        states = [C, F, R, P, D] * (size // 5)
        for job in set_points(sweep, states)[:3]:
            logged(job)
        member_client.get(f"/sweeps/{sweep.pk}/")  # warm the session and the content-type caches
        for path in ("", "live/"):
            with CaptureQueriesContext(connection) as queries:
                page = member_client.get(f"/sweeps/{sweep.pk}/{path}").content.decode()
            assert page.count('<tr id="point-') == min(size, 25)
            counts[size, path] = len(queries.captured_queries)
    assert counts[10, ""] == counts[200, ""]
    assert counts[10, "live/"] == counts[200, "live/"]


def test_a_large_sweeps_rows_come_in_pages_of_25_under_totals_of_every_point(member_client, member, profile) -> None:
    sweep = new_sweep(member, profile, axes=(SweepAxis("temperature", tuple(100.0 + n for n in range(60))),))
    jobs = set_points(sweep, [C] * 30 + [R] * 29 + [F])
    logged(jobs[59], temperature_shift=1.0)
    first = member_client.get(f"/sweeps/{sweep.pk}/").content.decode()
    assert [int(i) for i in re.findall(r'<tr id="point-(\d+)"', first)] == list(range(25))
    state = text_of(re.search(r'<div id="sweep-state".*?</div>', first, re.S).group(0))
    assert state == "60 points 29 running 30 completed 1 failed"  # every point, not the page's
    assert "0\u201324 of 60" in text_of(first)
    assert 'href="?page=2" rel="next"' in first
    assert 'href="?page=3"' in first
    assert 'id="sweep-retry"' in first  # point 59, on the last page, failed
    last = member_client.get(f"/sweeps/{sweep.pk}/?page=3").content.decode()
    assert [int(i) for i in re.findall(r'<tr id="point-(\d+)"', last)] == list(range(50, 60))
    assert point_row(last, 59).startswith("59 159.0 Failed NAMD_FAILED 400")
    assert f'hx-get="/sweeps/{sweep.pk}/live/?page=3"' in last  # the poll keeps the page
    live = member_client.get(f"/sweeps/{sweep.pk}/live/?page=3", **HTMX).content.decode()
    assert [int(i) for i in re.findall(r'<tr id="point-(\d+)"', live)] == list(range(50, 60))
    beyond = member_client.get(f"/sweeps/{sweep.pk}/?page=9").content.decode()  # past the end: the last page
    assert re.findall(r'<tr id="point-(\d+)"', beyond)[0] == "50"


def test_a_protocol_sweeps_page_costs_the_same_queries_for_2_or_6_points(member_client, member, profile) -> None:
    counts = {}
    for size in (2, 6):
        sweep = new_protocol_sweep(
            member, profile, axes=(SweepAxis("temperature", tuple(300.0 + n for n in range(size))),)
        )
        for point in SweepPoint.objects.filter(sweep=sweep).select_related("pipeline"):
            set_steps(point.pipeline, [C, C, R, P, P])
        member_client.get(f"/sweeps/{sweep.pk}/")
        with CaptureQueriesContext(connection) as queries:
            page = member_client.get(f"/sweeps/{sweep.pk}/").content.decode()
        assert page.count('<tr id="point-') == size
        assert "production 1/3 2/5" in point_row(page, 0)
        counts[size] = len(queries.captured_queries)
    assert counts[2] == counts[6]
