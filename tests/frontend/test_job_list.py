"""The jobs list: filters, sort, pages, constant query count, polled rows, bulk cancel and delete."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs import services
from jobs.models import Job, JobState
from templates_app.models import TemplateVersion
from tests.factories import ClusterProfileFactory
from tests.jobs.unit_jobs import new_job

pytestmark = pytest.mark.django_db

ROW_ID_RE = re.compile(rb'<tr id="job-row-(\d+)"')


def row_ids(response) -> list[int]:
    assert response.status_code == 200
    return [int(found) for found in ROW_ID_RE.findall(response.content)]


def set_state(job: Job, state: JobState, **fields) -> Job:
    Job.objects.filter(pk=job.pk).update(state=state, **fields)
    job.refresh_from_db()
    return job


def copies(job: Job, count: int, **fields) -> list[Job]:
    """`count` more jobs like `job` (bulk-created: the list's cost is what is measured, not the creation)."""
    rows = [
        Job(
            owner=job.owner,
            profile=job.profile,
            template_version=job.template_version,
            title=f"copy {n:02d}",
            project_dir=f"/p/copy-{n}",
            scratch_dir=f"/s/copy-{n}",
            **fields,
        )
        for n in range(count)
    ]
    return Job.objects.bulk_create(rows)


def bulk_post(client, job_ids, action, return_query=""):
    return client.post(
        "/jobs/bulk/",
        {"job_ids": [str(job_id) for job_id in job_ids], "action": action, "return_query": return_query},
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# ------------------------------------------------------------------ the list


def test_a_member_sees_only_their_jobs_and_an_admin_everyones(
    member_client, client, member, other_member, lab_admin, profile
) -> None:
    mine = new_job(member, profile, title="mine")
    theirs = new_job(other_member, profile, title="theirs")
    assert row_ids(member_client.get("/jobs/")) == [mine.pk]
    client.force_login(lab_admin)
    response = client.get("/jobs/")
    assert row_ids(response) == [theirs.pk, mine.pk]
    assert b"<td>bob_t</td>" in response.content


def test_each_row_shows_its_job(member_client, member, profile) -> None:
    job = set_state(
        new_job(member, profile, title="water box"),
        JobState.RUNNING,
        slurm_job_id="4711",
        started_at=timezone.now() - timedelta(minutes=12),
    )
    html = member_client.get("/jobs/").content.decode()
    row = html[html.index(f'<tr id="job-row-{job.pk}"') :]
    row = row[: row.index("</tr>")]
    assert f'name="job_ids" value="{job.pk}"' in row
    assert f'<a href="/jobs/{job.pk}/">water box</a>' in row
    assert '<span class="badge state-RUNNING">Running</span>' in row
    assert f"<td>{profile.name}</td>" in row
    assert "Explicit-solvent NPT equilibration" in row
    assert "<td>alice_t</td>" in row
    assert "<td>4711</td>" in row
    assert "12\xa0minutes" in row


def test_filters_narrow_the_rows_and_are_kept_in_the_form(member_client, member, profile) -> None:
    draft = new_job(member, profile, title="alpha draft")
    running = set_state(new_job(member, profile, title="beta run"), JobState.RUNNING)
    done = set_state(new_job(member, profile, title="gamma done"), JobState.COMPLETED)
    elsewhere = ClusterProfileFactory(name="Elsewhere")
    remote = new_job(member, profile, title="delta elsewhere")
    Job.objects.filter(pk=remote.pk).update(profile=elsewhere)
    minimization = TemplateVersion.objects.get(template__slug="vacuum-minimization")
    Job.objects.filter(pk=done.pk).update(template_version=minimization)

    assert row_ids(member_client.get("/jobs/?state=RUNNING")) == [running.pk]
    assert row_ids(member_client.get("/jobs/?state=DRAFT")) == [remote.pk, draft.pk]
    assert row_ids(member_client.get("/jobs/?q=ALPHA")) == [draft.pk]
    assert row_ids(member_client.get(f"/jobs/?cluster={elsewhere.pk}")) == [remote.pk]
    assert row_ids(member_client.get("/jobs/?template=vacuum-minimization")) == [done.pk]
    group = "SUBMITTING,PENDING,RUNNING,COMPLETING"
    response = member_client.get(f"/jobs/?state={group}&q=beta")
    assert row_ids(response) == [running.pk]
    assert f'<option value="{group}" selected>Active</option>'.encode() in response.content
    assert b'value="beta"' in response.content


@pytest.mark.parametrize("query", ["cluster=abc", "state=EXPLODED", "sort=owner__password", "template=nope"])
def test_a_bad_filter_is_reported_on_its_field_and_lists_nothing(member_client, member, profile, query) -> None:
    new_job(member, profile)
    response = member_client.get(f"/jobs/?{query}")
    assert row_ids(response) == []
    field = query.split("=")[0]
    assert f'aria-invalid="true" aria-describedby="id_{field}_error"'.encode() in response.content
    assert f'<span class="field-error" id="id_{field}_error">'.encode() in response.content
    assert b"Fix the filters above" in response.content


def test_the_list_sorts_by_whitelisted_columns(member_client, member, profile) -> None:
    banana = new_job(member, profile, title="banana")
    apple = new_job(member, profile, title="apple")
    cherry = new_job(member, profile, title="cherry")
    now = timezone.now()
    set_state(banana, JobState.PENDING, submitted_at=now - timedelta(hours=2))
    set_state(cherry, JobState.PENDING, submitted_at=now - timedelta(hours=1))
    assert row_ids(member_client.get("/jobs/")) == [cherry.pk, apple.pk, banana.pk]
    assert row_ids(member_client.get("/jobs/?sort=created")) == [banana.pk, apple.pk, cherry.pk]
    assert row_ids(member_client.get("/jobs/?sort=title")) == [apple.pk, banana.pk, cherry.pk]
    assert row_ids(member_client.get("/jobs/?sort=-title")) == [cherry.pk, banana.pk, apple.pk]
    assert row_ids(member_client.get("/jobs/?sort=state")) == [apple.pk, banana.pk, cherry.pk]  # DRAFT < PENDING
    # Never submitted comes last either way.
    assert row_ids(member_client.get("/jobs/?sort=submitted")) == [banana.pk, cherry.pk, apple.pk]
    assert row_ids(member_client.get("/jobs/?sort=-submitted")) == [cherry.pk, banana.pk, apple.pk]


def test_a_column_header_toggles_its_sort_and_keeps_the_filters(member_client, member, profile) -> None:
    new_job(member, profile)
    content = member_client.get("/jobs/?sort=title&state=DRAFT&page=1").content
    assert b'<th scope="col" aria-sort="ascending"><a href="?state=DRAFT&amp;sort=-title">Title' in content
    assert b'<th scope="col"><a href="?state=DRAFT&amp;sort=-created">Created' in content


def test_pages_of_25_keep_the_filters(member_client, member, profile) -> None:
    first = set_state(new_job(member, profile), JobState.COMPLETED)
    copies(first, 29, state=JobState.COMPLETED)
    new_job(member, profile, title="a draft")
    page_one = member_client.get("/jobs/?state=COMPLETED&sort=title")
    assert len(row_ids(page_one)) == 25
    assert b"30 jobs" in page_one.content
    assert b'href="?state=COMPLETED&amp;sort=title&amp;page=2" rel="next"' in page_one.content
    page_two = member_client.get("/jobs/?state=COMPLETED&sort=title&page=2")
    assert len(row_ids(page_two)) == 5
    assert set(row_ids(page_one)).isdisjoint(row_ids(page_two))
    assert first.pk in row_ids(page_two)  # "water" sorts after every "copy nn"
    assert row_ids(member_client.get("/jobs/?state=COMPLETED&sort=title&page=99")) == row_ids(page_two)  # the last


def test_the_page_costs_the_same_queries_for_5_or_40_jobs(member_client, member, profile) -> None:
    first = new_job(member, profile)
    copies(first, 4, state=JobState.RUNNING)
    member_client.get("/jobs/")  # warm the session and the content-type caches
    with CaptureQueriesContext(connection) as five:
        assert len(row_ids(member_client.get("/jobs/"))) == 5
    copies(first, 35, state=JobState.COMPLETED)
    with CaptureQueriesContext(connection) as forty:
        assert len(row_ids(member_client.get("/jobs/"))) == 25
    assert len(forty.captured_queries) == len(five.captured_queries)


# ------------------------------------------------------------------ rows that poll


@pytest.mark.parametrize(
    ("state", "polls"),
    [
        (JobState.RUNNING, True),
        (JobState.PENDING, True),
        (JobState.READY, True),
        (JobState.DRAFT, False),
        (JobState.COMPLETED, False),
        (JobState.FAILED, False),
        (JobState.CANCELLED, False),
    ],
)
def test_the_rows_poll_while_a_job_on_the_page_is_active(member_client, member, profile, state, polls) -> None:
    job = set_state(new_job(member, profile), state)
    set_state(new_job(member, profile, title="done"), JobState.COMPLETED)
    trigger = 'hx-get="/jobs/?state=&amp;sort=title" hx-trigger="every 5s" hx-swap="outerHTML"'
    listed = member_client.get("/jobs/?state=&sort=title").content.decode()
    assert (trigger in listed) is polls
    # The poll gets the table body only, with the same filters and sort, and the same rule for its trigger.
    response = member_client.get("/jobs/?state=&sort=title", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<tbody id="job-rows"')
    assert "<thead" not in body
    assert (trigger in body) is polls
    assert body.index(">done<") < body.index(f">{job.title}<")  # sorted by title
    assert f'id="job-select-{job.pk}"' in body
    assert "hx-preserve" in body  # the checkbox keeps its tick across refreshes


def test_the_polled_rows_are_only_the_members_and_drop_a_deleted_job(
    member_client, member, other_member, lab_admin, client, profile
) -> None:
    mine = set_state(new_job(member, profile, title="mine"), JobState.RUNNING)
    theirs = set_state(new_job(other_member, profile, title="theirs"), JobState.RUNNING)
    body = member_client.get("/jobs/", HTTP_HX_REQUEST="true").content.decode()
    assert f'id="job-row-{mine.pk}"' in body
    assert f'id="job-row-{theirs.pk}"' not in body
    Job.objects.filter(pk=mine.pk).update(deleted_at=timezone.now())
    body = member_client.get("/jobs/", HTTP_HX_REQUEST="true").content.decode()
    assert f'id="job-row-{mine.pk}"' not in body
    assert "hx-trigger" not in body  # nothing active is left on the page: the polling stops
    client.force_login(lab_admin)
    assert f'id="job-row-{theirs.pk}"' in client.get("/jobs/", HTTP_HX_REQUEST="true").content.decode()


# ------------------------------------------------------------------ bulk actions


def test_the_bulk_buttons_are_confirmed_and_post_the_selection(member_client, member, profile) -> None:
    job = new_job(member, profile)
    content = member_client.get("/jobs/?state=DRAFT").content.decode()
    assert '<form method="post" action="/jobs/bulk/" id="bulk-form" data-bulk-form data-confirm=' in content
    assert '<input type="hidden" name="return_query" value="state=DRAFT">' in content
    assert 'name="action" value="cancel" class="secondary" data-bulk-action' in content
    assert ">Cancel selected</button>" in content
    assert 'name="action" value="delete" class="danger" data-bulk-action' in content
    assert ">Delete selected</button>" in content
    assert f'name="job_ids" value="{job.pk}" id="job-select-{job.pk}" form="bulk-form"' in content
    assert 'form="bulk-form" data-select-all' in content
    assert '<script src="/static/frontend/job_list.js" defer></script>' in content


def test_bulk_cancel_cancels_drafts_at_once_and_goes_back_to_the_filtered_list(member_client, member, profile) -> None:
    first, second = new_job(member, profile, title="one"), new_job(member, profile, title="two")
    untouched = new_job(member, profile, title="three")
    response = bulk_post(member_client, [first.pk, second.pk], "cancel", return_query="state=DRAFT&sort=title")
    assert response.status_code == 302
    assert response["Location"] == "/jobs/?state=DRAFT&sort=title"
    states = Job.objects.filter(pk__in=[first.pk, second.pk]).values_list("state", flat=True)
    assert list(states) == [JobState.CANCELLED, JobState.CANCELLED]
    assert Job.objects.get(pk=untouched.pk).state == JobState.DRAFT
    assert messages_of(response)[0].startswith("Cancelled 2 jobs")
    page = member_client.get(response["Location"])
    assert b"Cancelled 2 jobs" in page.content
    assert row_ids(page) == [untouched.pk]


def test_bulk_delete_marks_the_jobs_deleted(member_client, member, profile) -> None:
    doomed = [new_job(member, profile, title=f"old {n}") for n in range(3)]
    kept = new_job(member, profile, title="keep")
    response = bulk_post(member_client, [job.pk for job in doomed], "delete")
    assert response["Location"] == "/jobs/"
    assert Job.objects.filter(pk__in=[job.pk for job in doomed], deleted_at__isnull=False).count() == 3
    assert Job.objects.get(pk=kept.pk).deleted_at is None
    assert messages_of(response) == ["Deleted 3 jobs."]
    assert row_ids(member_client.get("/jobs/")) == [kept.pk]


def test_another_members_job_in_a_bulk_post_is_refused_and_unchanged(
    member_client, member, other_member, profile
) -> None:
    mine = new_job(member, profile)
    theirs = new_job(other_member, profile, title="bob's secret run")
    for action in ("cancel", "delete"):
        response = bulk_post(member_client, [theirs.pk, mine.pk] if action == "cancel" else [theirs.pk], action)
        theirs.refresh_from_db()
        assert (theirs.state, theirs.deleted_at) == (JobState.DRAFT, None)
        assert f"#{theirs.pk}: No such job. (JOB_NOT_FOUND)" in messages_of(response)[0]
        assert b"secret run" not in member_client.get(response["Location"]).content
    assert Job.objects.get(pk=mine.pk).state == JobState.CANCELLED


def test_a_finished_job_cannot_be_cancelled_and_the_summary_says_why(member_client, member, profile) -> None:
    draft = new_job(member, profile)
    ended = set_state(new_job(member, profile), JobState.COMPLETED)
    response = bulk_post(member_client, [draft.pk, ended.pk], "cancel")
    summary = messages_of(response)[0]
    assert summary.startswith("Cancelled 1 job ")
    assert f"1 job could not be cancelled: #{ended.pk}: The job has already ended. (JOB_ALREADY_ENDED)" in summary
    assert Job.objects.get(pk=ended.pk).state == JobState.COMPLETED
    assert Job.objects.get(pk=draft.pk).state == JobState.CANCELLED


@pytest.mark.parametrize(
    ("job_ids", "action", "message"),
    [
        (["abc"], "cancel", "The selection was not understood"),
        (["\u00b2"], "cancel", "The selection was not understood"),  # a digit to str.isdigit, not to int()
        (["9" * 30], "cancel", "The selection was not understood"),
        ([], "cancel", "Select at least one job first."),
        (["1"], "explode", "Choose to cancel or to delete"),
        ([str(n) for n in range(1, 202)], "delete", "Select at most 200 jobs at a time."),
    ],
)
def test_a_bad_bulk_post_changes_nothing_and_says_why(member_client, member, profile, job_ids, action, message) -> None:
    job = new_job(member, profile)
    response = member_client.post("/jobs/bulk/", {"job_ids": job_ids or [], "action": action})
    assert response.status_code == 302
    assert messages_of(response)[0].startswith(message)
    job.refresh_from_db()
    assert (job.state, job.deleted_at) == (JobState.DRAFT, None)


def test_the_bulk_view_takes_only_posts_and_redirects_only_to_the_list(member_client, member, profile) -> None:
    assert member_client.get("/jobs/bulk/").status_code == 405
    job = new_job(member, profile)
    response = bulk_post(member_client, [job.pk], "cancel", return_query="next=https://evil.example/&state=DRAFT")
    assert response["Location"] == "/jobs/?next=https%3A%2F%2Fevil.example%2F&state=DRAFT"


def test_the_bulk_service_reports_done_and_refused_ids(member, other_member, profile) -> None:
    mine = new_job(member, profile)
    theirs = new_job(other_member, profile)
    result = services.bulk_action(user=member, job_ids=[mine.pk, mine.pk, theirs.pk, 0], action="delete")
    assert result.done == (mine.pk,)
    assert [(refusal.job_id, refusal.code) for refusal in result.refused] == [
        (theirs.pk, "JOB_NOT_FOUND"),
        (0, "JOB_NOT_FOUND"),
    ]
