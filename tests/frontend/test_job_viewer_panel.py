"""The 3D view's card and panel on the job and run pages (no cluster: the preparation is only ordered here;
tests/jobs/test_viewer_on_cluster.py and tests/browser/test_viewer_page.py run it for real)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from jobs.models import JobState, JobView
from portal.models import TaskOrder
from tests.factories import UserFactory
from tests.frontend.pipeline_runs import new_run, set_steps
from tests.jobs.unit_jobs import new_job

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
SCRIPT_RE = re.compile(r'<script src="([^"]+)"')
C, R, P = JobState.COMPLETED, JobState.RUNNING, JobState.PENDING


def test_the_job_page_has_the_card_and_none_of_the_viewers_files(member_client: Client, member, profile) -> None:
    job = new_job(member, profile)

    page = member_client.get(f"/jobs/{job.pk}/").content.decode()

    assert 'id="viewer-open"' in page
    assert f'hx-post="/jobs/{job.pk}/viewer/"' in page
    scripts = SCRIPT_RE.findall(page)
    assert "/static/frontend/viewer_loader.js" in scripts  # the trigger, 1 KB; the viewer itself loads on open
    assert not [src for src in scripts if src.endswith(("/ngl.js", "/viewer.js"))]
    assert "viewer.css" not in page


def test_the_owner_opens_the_view_once_and_the_panel_brings_its_script(member_client: Client, member, profile) -> None:
    job = new_job(member, profile)

    panel = member_client.post(f"/jobs/{job.pk}/viewer/", **HTMX)
    again = member_client.post(f"/jobs/{job.pk}/viewer/", **HTMX)

    assert panel.status_code == again.status_code == 200
    text = panel.content.decode()
    assert 'data-script="/static/frontend/viewer.js"' in text
    assert "<script" not in text  # htmx runs no script of a fragment: viewer_loader.js adds it
    assert 'data-ngl="/static/vendor/ngl/ngl.js"' in text
    assert f'data-view-url="/api/v1/jobs/{job.pk}/view"' in text
    assert JobView.objects.get(job=job).state == JobView.State.PREPARING
    assert TaskOrder.objects.filter(task_name="jobs.tasks.prepare_view_task", key=f"view:{job.pk}").count() == 1


def test_a_lab_admin_sees_the_panel_but_does_not_open_the_view(client: Client, member, lab_admin, profile) -> None:
    job = new_job(member, profile)
    client.force_login(lab_admin)

    page = client.get(f"/jobs/{job.pk}/").content.decode()
    panel = client.get(f"/jobs/{job.pk}/viewer/", **HTMX)
    refused = client.post(f"/jobs/{job.pk}/viewer/", **HTMX)

    assert f'hx-get="/jobs/{job.pk}/viewer/"' in page
    assert panel.status_code == 200
    assert "viewer-rebuild-form" not in panel.content.decode()
    assert refused.status_code == 403
    assert not JobView.objects.filter(job=job).exists()


def test_another_member_gets_no_panel(client: Client, member, profile) -> None:
    job = new_job(member, profile)

    client.force_login(UserFactory())
    assert client.get(f"/jobs/{job.pk}/viewer/", **HTMX).status_code == 404
    assert client.get(f"/api/v1/jobs/{job.pk}/view").status_code == 404


def test_the_api_says_none_before_the_view_is_opened_and_refuses_its_files(member_client: Client, member, profile):
    job = new_job(member, profile)

    answer = member_client.get(f"/api/v1/jobs/{job.pk}/view").json()
    missing = member_client.get(f"/api/v1/jobs/{job.pk}/view/parts/solute")
    member_client.post(f"/api/v1/jobs/{job.pk}/view")
    preparing = member_client.get(f"/api/v1/jobs/{job.pk}/view/frames/0")

    assert answer == {**answer, "state": "NONE", "job_id": job.pk}
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "VIEW_NOT_FOUND")
    assert (preparing.status_code, preparing.json()["error"]["code"]) == (409, "VIEW_NOT_READY")


def test_the_run_page_offers_each_steps_view_and_opens_the_one_chosen(member_client: Client, member, profile) -> None:
    run = new_run(member, profile)
    steps = set_steps(run, [C, C, R, P, P])

    page = member_client.get(f"/pipelines/{run.pk}/").content.decode()
    panel = member_client.post(f"/jobs/{steps[2].pk}/viewer/", **HTMX)

    assert 'id="viewer-card"' in page
    for step in steps:
        assert f'data-step-job="{step.pk}"' in page
        assert f'hx-post="/jobs/{step.pk}/viewer/"' in page
    assert "/static/frontend/viewer_loader.js" in SCRIPT_RE.findall(page)
    assert panel.status_code == 200
    assert 'data-active="true"' in panel.content.decode()  # a running step's view follows it
    assert list(JobView.objects.values_list("job_id", flat=True)) == [steps[2].pk]
