"""Seeing vs acting: members see and act on their own jobs; lab admins see every job but act on their own only.

Every API action and page action on a member's job is refused to a lab admin with 403 JOB_NOT_YOURS and
changes nothing (no state, no event, no task); every read answers. A job one may not see stays 404.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.services import create_api_token
from jobs import services
from jobs.access import access_job, access_job_for_task, access_job_to_act, actable_jobs, visible_jobs
from jobs.models import Job, JobEvent, StagedDownload
from portal.errors import Forbidden, NotFound
from templates_app.models import Template
from tests.factories import CredentialFactory, JobFactory, UserFactory
from tests.jobs.unit_jobs import new_job, unit_profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def profile(db):
    return unit_profile()


@pytest.fixture
def staff_admin(db):
    """A lab admin who is not a superuser (is_staff only)."""
    return UserFactory(username="staff_t", is_staff=True)


@pytest.fixture
def finished_job(member, profile) -> Job:
    return JobFactory(owner=member, profile=profile, completed=True, title="finished")


@pytest.fixture
def draft(member, profile) -> Job:
    return new_job(member, profile, title="draft")


def bearer(user) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {create_api_token(user=user, name='t', expires_in_days=1).secret}"}


# ------------------------------------------------------------------ the rule


USERS = ("owner", "other", "admin", "staff", "inactive", "missing")


def _user(who, member, other_member, lab_admin, staff_admin, inactive_member):
    return {
        "owner": member,
        "other": other_member,
        "admin": lab_admin,
        "staff": staff_admin,
        "inactive": inactive_member,
        "missing": member,
    }[who]


@pytest.mark.parametrize(
    ("who", "sees", "acts"),
    [
        ("owner", True, True),
        ("other", False, False),
        ("admin", True, False),
        ("staff", True, False),
        ("inactive", False, False),
        ("missing", False, False),
    ],
)
def test_one_rule_decides_who_sees_and_who_acts(
    who, sees, acts, member, other_member, lab_admin, staff_admin, inactive_member, draft
) -> None:
    user = _user(who, member, other_member, lab_admin, staff_admin, inactive_member)
    job_id = draft.pk + 1000 if who == "missing" else draft.pk
    assert visible_jobs(user).filter(pk=job_id).exists() is sees
    assert actable_jobs(user).filter(pk=job_id).exists() is acts
    if acts:
        assert access_job_to_act(user=user, job_id=job_id).pk == draft.pk
        assert access_job_for_task(acting_user_id=user.pk, job_id=job_id).pk == draft.pk
    elif sees:
        assert access_job(user=user, job_id=job_id).pk == draft.pk
        for load in (
            lambda: access_job_to_act(user=user, job_id=job_id),
            lambda: access_job_for_task(acting_user_id=user.pk, job_id=job_id),
        ):
            with pytest.raises(Forbidden) as refused:
                load()
            assert (refused.value.code, refused.value.http_status) == ("JOB_NOT_YOURS", 403)
    else:
        for load in (
            lambda: access_job(user=user, job_id=job_id),
            lambda: access_job_to_act(user=user, job_id=job_id),
            lambda: access_job_for_task(acting_user_id=user.pk, job_id=job_id),
        ):
            with pytest.raises(NotFound) as hidden:
                load()
            assert hidden.value.code == "JOB_NOT_FOUND"


def test_the_querysets_and_the_loaders_agree(member, other_member, lab_admin, profile) -> None:
    jobs = [new_job(member, profile, title="a"), new_job(other_member, profile, title="b")]
    jobs.append(new_job(lab_admin, profile, title="c"))
    for user in (member, other_member, lab_admin):
        for job in jobs:
            try:
                access_job_to_act(user=user, job_id=job.pk)
                can_act = True
            except (Forbidden, NotFound):
                can_act = False
            assert actable_jobs(user).filter(pk=job.pk).exists() is can_act
    assert set(actable_jobs(lab_admin).values_list("pk", flat=True)) == {jobs[2].pk}


# ------------------------------------------------------------------ the API

ACTIONS = [
    ("post", "/api/v1/jobs/{job}/inputs", "file"),
    ("post", "/api/v1/jobs/{job}/archives", "archive"),
    ("get", "/api/v1/jobs/{job}/uploads/water.pdb?size=10", None),
    ("put", "/api/v1/jobs/{job}/uploads/water.pdb", "chunk"),
    ("post", "/api/v1/jobs/{job}/submit", None),
    ("put", "/api/v1/jobs/{job}/values", {"values": {"run_steps": 50}}),
    ("post", "/api/v1/jobs/{job}/logs/refresh", None),
    ("post", "/api/v1/jobs/{job}/files/refresh", None),
    ("post", "/api/v1/jobs/{job}/downloads", {"path": "out.coor"}),
    ("get", "/api/v1/jobs/{job}/downloads/{download}", None),
    ("get", "/api/v1/jobs/{job}/downloads/{download}/content", None),
    ("post", "/api/v1/jobs/{job}/cancel", None),
    ("post", "/api/v1/jobs/{job}/restart", {}),
    ("post", "/api/v1/jobs/{job}/next-stage", "next_stage"),
    ("delete", "/api/v1/jobs/{job}", None),
    ("post", "/api/v1/jobs/{job}/refresh", None),
]

READS = [
    "/api/v1/jobs/{job}",
    "/api/v1/jobs/{job}/inputs",
    "/api/v1/jobs/{job}/events",
    "/api/v1/jobs/{job}/progress",
    "/api/v1/jobs/{job}/energies",
    "/api/v1/jobs/{job}/logs",
    "/api/v1/jobs/{job}/files",
]


def _call(client: Client, method: str, url: str, body, headers: dict[str, str]):
    if body == "file":
        return client.post(url, {"file": SimpleUploadedFile("water.pdb", b"ATOM\n")}, **headers)
    if body == "archive":
        return client.post(url, {"file": SimpleUploadedFile("inputs.tgz", b"\x1f\x8b")}, **headers)
    if body == "chunk":
        return client.put(
            url, b"0123456789", content_type="application/octet-stream", HTTP_CONTENT_RANGE="bytes 0-9/10", **headers
        )
    if body == "next_stage":
        body = {"template_id": Template.objects.get(slug="production-restart").pk}
    if body is None:
        return getattr(client, method)(url, **headers)
    return getattr(client, method)(url, body, content_type="application/json", **headers)


def _snapshot(job: Job) -> tuple:
    job.refresh_from_db()
    return (
        job.state,
        job.deleted_at,
        job.cancel_requested_at,
        job.values,
        JobEvent.objects.filter(job=job).count(),
        Job.objects.count(),
        job.inputs.count(),
        job.downloads.count(),
    )


@pytest.mark.parametrize(("method", "path", "body"), ACTIONS, ids=[f"{m} {p}" for m, p, _ in ACTIONS])
def test_a_lab_admin_may_not_act_on_a_members_job_over_the_api(
    method, path, body, lab_admin, member, finished_job, sent_tasks
) -> None:
    download = StagedDownload.objects.create(job=finished_job, relpath="out.coor", requested_by=member)
    before = _snapshot(finished_job)
    url = path.format(job=finished_job.pk, download=download.pk)
    response = _call(Client(), method, url, body, bearer(lab_admin))
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "JOB_NOT_YOURS"
    assert _snapshot(finished_job) == before
    assert sent_tasks == []


@pytest.mark.parametrize(("method", "path", "body"), ACTIONS, ids=[f"{m} {p}" for m, p, _ in ACTIONS])
def test_a_job_one_may_not_see_stays_not_found_for_every_action(
    method, path, body, other_member, member, finished_job, sent_tasks
) -> None:
    download = StagedDownload.objects.create(job=finished_job, relpath="out.coor", requested_by=member)
    url = path.format(job=finished_job.pk, download=download.pk)
    response = _call(Client(), method, url, body, bearer(other_member))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "JOB_NOT_FOUND"
    assert sent_tasks == []


@pytest.mark.parametrize("path", READS)
def test_a_lab_admin_reads_a_members_job_over_the_api(path, lab_admin, finished_job) -> None:
    response = Client().get(path.format(job=finished_job.pk), **bearer(lab_admin))
    assert response.status_code == 200, response.content


def test_the_owner_may_act_where_the_admin_may_not(member, draft, sent_tasks) -> None:
    response = Client().post(f"/api/v1/jobs/{draft.pk}/cancel", **bearer(member))
    assert response.status_code == 202
    assert response.json()["job"]["state"] == "CANCELLED"


def test_a_lab_admin_may_clone_a_members_job_into_their_own(lab_admin, draft) -> None:
    copy = services.clone_job(user=lab_admin, job_id=draft.pk)
    assert copy.owner_id == lab_admin.pk
    assert copy.values == draft.values


# ------------------------------------------------------------------ tasks check again


def test_a_task_asked_by_a_lab_admin_runs_nothing_on_a_members_job(lab_admin, finished_job, fake_cluster) -> None:
    for run in (
        lambda: services.list_job_files(job_id=finished_job.pk, acting_user_id=lab_admin.pk),
        lambda: services.fetch_logs(job_id=finished_job.pk, acting_user_id=lab_admin.pk),
        lambda: services.submit_job(job_id=finished_job.pk, acting_user_id=lab_admin.pk),
        lambda: services.delete_job_files(job_id=finished_job.pk, acting_user_id=lab_admin.pk),
    ):
        with pytest.raises(Forbidden) as refused:
            run()
        assert refused.value.code == "JOB_NOT_YOURS"
    assert fake_cluster.argvs == []


def test_a_scancel_task_asked_by_a_lab_admin_cancels_nothing_of_a_members(lab_admin, member, profile, fake_cluster):
    running = JobFactory(owner=member, profile=profile, running=True)
    services.cancel_in_slurm(job_ids=[running.pk], acting_user_id=lab_admin.pk)
    assert fake_cluster.argvs == []


def test_the_owners_task_runs_and_names_the_owner_as_the_acting_user(member, finished_job, fake_cluster) -> None:
    CredentialFactory(user=member, profile=finished_job.profile)
    services.list_job_files(job_id=finished_job.pk, acting_user_id=member.pk)
    assert fake_cluster.acting_user_ids == [member.pk]
    assert fake_cluster.argvs != []


# ------------------------------------------------------------------ pages

PAGE_ACTIONS = [
    ("post", "frontend:job_cancel", {}),
    ("post", "frontend:job_restart", {"submit": "1"}),
    ("post", "frontend:job_next_stage", {"template_id": "1"}),
    ("post", "frontend:job_delete", {}),
    ("post", "frontend:job_status", {}),
    ("post", "frontend:job_files", {}),
    ("post", "frontend:job_download", {"relpath": "out.coor"}),
    ("get", "frontend:wizard_inputs", None),
    ("post", "frontend:wizard_inputs", {"submit_when_ready": "on"}),
    ("post", "frontend:wizard_use_input_values", {}),
    ("post", "frontend:job_submit", {}),
]


@pytest.mark.parametrize(("method", "name", "data"), PAGE_ACTIONS, ids=[n for _, n, _ in PAGE_ACTIONS])
def test_a_lab_admin_may_not_act_on_a_members_job_from_the_pages(
    method, name, data, client, lab_admin, finished_job, sent_tasks
) -> None:
    from django.urls import reverse

    client.force_login(lab_admin)
    before = _snapshot(finished_job)
    url = reverse(name, kwargs={"job_id": finished_job.pk})
    response = client.post(url, data) if method == "post" else client.get(url)
    assert response.status_code == 403
    assert b"JOB_NOT_YOURS" in response.content or b"only its owner" in response.content
    assert _snapshot(finished_job) == before
    assert sent_tasks == []


def test_the_log_refresh_and_the_download_status_are_refused_from_the_pages(
    client, lab_admin, member, finished_job, sent_tasks
) -> None:
    client.force_login(lab_admin)
    download = StagedDownload.objects.create(job=finished_job, relpath="out.coor", requested_by=member)
    assert client.post(f"/jobs/{finished_job.pk}/log/namd/").status_code == 403
    assert client.get(f"/jobs/{finished_job.pk}/downloads/{download.pk}/").status_code == 403
    assert client.get(f"/jobs/{finished_job.pk}/log/namd/").status_code == 200
    assert sent_tasks == []


def test_a_lab_admin_sees_a_members_job_page_without_its_actions(client, lab_admin, member, profile) -> None:
    running = JobFactory(owner=member, profile=profile, running=True, title="theirs")
    from jobs.models import JobProgress

    JobProgress.objects.create(
        job=running, project_files=[{"path": "out.coor", "is_dir": False, "size_bytes": 10, "modified": 0}]
    )
    client.force_login(lab_admin)
    page = client.get(f"/jobs/{running.pk}/").content.decode()
    assert "data-not-yours" in page
    for action in ("cancel", "delete", "restart", "next-stage", "files/download"):
        assert f"/jobs/{running.pk}/{action}/" not in page
    assert f'hx-post="/jobs/{running.pk}/status/"' not in page
    assert f'hx-post="/jobs/{running.pk}/files/"' not in page
    assert f'hx-post="/jobs/{running.pk}/log/' not in page
    assert f"/jobs/{running.pk}/clone/" in page  # a copy of their own is fine


def test_the_owner_sees_the_actions_on_their_job_page(client, member, profile) -> None:
    running = JobFactory(owner=member, profile=profile, running=True, title="mine")
    client.force_login(member)
    page = client.get(f"/jobs/{running.pk}/").content.decode()
    assert "data-not-yours" not in page
    for action in ("cancel", "delete", "clone"):
        assert f"/jobs/{running.pk}/{action}/" in page
    assert f'hx-post="/jobs/{running.pk}/status/"' in page


def test_the_job_list_offers_a_lab_admin_no_selection_of_others_jobs(client, lab_admin, member, profile) -> None:
    theirs = JobFactory(owner=member, profile=profile, running=True, title="theirs")
    own = JobFactory(owner=lab_admin, profile=profile, running=True, title="own")
    client.force_login(lab_admin)
    page = client.get("/jobs/").content.decode()
    assert f'id="job-select-{own.pk}"' in page
    assert f'id="job-select-{theirs.pk}"' not in page
    assert f"/jobs/{theirs.pk}/" in page
