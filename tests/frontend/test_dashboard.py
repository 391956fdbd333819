"""The dashboard: jobs by state group with links into the list, recent events, each cluster's connection."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from clusters.services import save_password_credential
from jobs.models import Job, JobState
from jobs.selectors import STATE_GROUPS
from tests.factories import ClusterProfileFactory
from tests.jobs.unit_jobs import new_job

pytestmark = pytest.mark.django_db


def group_total(content: bytes, key: str) -> int:
    return int(re.search(rb'data-group-total="' + key.encode() + rb'">(\d+)<', content).group(1))


def state_count(content: bytes, state: str) -> int | None:
    found = re.search(rb'data-state-count="' + state.encode() + rb'">(\d+)<', content)
    return int(found.group(1)) if found else None


def jobs_in(user, profile, *states: JobState) -> list[Job]:
    jobs = []
    for number, state in enumerate(states):
        job = new_job(user, profile, title=f"{user.username} {state.lower()} {number}")
        Job.objects.filter(pk=job.pk).update(state=state)
        jobs.append(job)
    return jobs


def test_the_state_groups_hold_every_state_once() -> None:
    grouped = [state for group in STATE_GROUPS for state in group.states]
    assert sorted(grouped) == sorted(JobState.values)
    assert [group.key for group in STATE_GROUPS] == ["active", "attention", "finished"]


def test_a_member_sees_their_own_counts_by_group_with_links(member_client, member, other_member, profile) -> None:
    jobs_in(member, profile, JobState.DRAFT, JobState.RUNNING, JobState.PENDING, JobState.COMPLETED, JobState.FAILED)
    jobs_in(other_member, profile, JobState.RUNNING, JobState.RUNNING, JobState.COMPLETED)
    content = member_client.get("/").content
    assert (group_total(content, "active"), group_total(content, "attention"), group_total(content, "finished")) == (
        2,
        2,
        1,
    )
    assert (state_count(content, "RUNNING"), state_count(content, "FAILED"), state_count(content, "CANCELLED")) == (
        1,
        1,
        None,
    )
    assert b'href="/jobs/?state=SUBMITTING%2CPENDING%2CRUNNING%2CCOMPLETING">Active</a>' in content
    assert b'<a href="/jobs/?state=RUNNING"><span class="badge state-RUNNING">Running</span></a>' in content
    assert b'<a class="button" href="/jobs/new/">New job</a>' in content


def test_an_admin_counts_every_members_jobs(client, lab_admin, member, other_member, profile) -> None:
    jobs_in(member, profile, JobState.RUNNING)
    jobs_in(other_member, profile, JobState.RUNNING, JobState.COMPLETED)
    client.force_login(lab_admin)
    content = client.get("/").content
    assert (group_total(content, "active"), group_total(content, "finished")) == (2, 1)
    assert b"Lab jobs by state" in content


def test_deleted_jobs_are_not_counted(member_client, member, profile) -> None:
    (job,) = jobs_in(member, profile, JobState.RUNNING)
    Job.objects.filter(pk=job.pk).update(deleted_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert group_total(member_client.get("/").content, "active") == 0


def test_recent_events_are_the_members_own_and_link_to_the_job(
    member_client, client, member, other_member, lab_admin, profile
) -> None:
    mine = new_job(member, profile, title="my water box")
    theirs = new_job(other_member, profile, title="bob's membrane")
    content = member_client.get("/").content.decode()
    assert f'<a href="/jobs/{mine.pk}/">my water box</a>' in content
    assert "CREATED" in content
    assert "bob&#x27;s membrane" not in content
    client.force_login(lab_admin)
    admin_view = client.get("/").content.decode()
    assert f'<a href="/jobs/{theirs.pk}/">bob&#x27;s membrane</a> <span class="muted">(bob_t)</span>' in admin_view
    assert f'<a href="/jobs/{mine.pk}/">my water box</a>' in admin_view


def test_recent_events_show_the_newest_ten(member_client, member, profile) -> None:
    jobs = [new_job(member, profile, title=f"run {n:02d}") for n in range(12)]
    content = member_client.get("/").content.decode()
    shown = re.findall(r'<a href="/jobs/(\d+)/">run \d\d</a>', content)
    assert [int(job_id) for job_id in shown] == [job.pk for job in reversed(jobs)][:10]


def test_each_usable_cluster_shows_the_members_credential_state(member_client, member, other_member, profile) -> None:
    tested_ok = ClusterProfileFactory(name="Tested cluster", slug="tested")
    tested_bad = ClusterProfileFactory(name="Broken cluster", slug="broken")
    ClusterProfileFactory(name="Retired cluster", slug="retired", is_active=False)
    when = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    ok = save_password_credential(user=member, profile=tested_ok, remote_username="alice", password="pw")
    ok.last_tested_at, ok.last_test_ok, ok.last_test_summary = when, True, "Connected as alice; sbatch found."
    ok.save()
    bad = save_password_credential(user=member, profile=tested_bad, remote_username="alice", password="pw")
    bad.last_tested_at, bad.last_test_ok, bad.last_test_summary = when, False, "The cluster refused the login."
    bad.save()
    # Someone else's credential on the first profile is not the member's.
    save_password_credential(user=other_member, profile=profile, remote_username="bob", password="pw")

    content = member_client.get("/").content.decode()
    none_yet = content[content.index(f'<tr id="connection-{profile.slug}">') :].split("</tr>")[0]
    assert "No credential yet." in none_yet
    assert '<a href="/clusters/">Add one on the clusters page</a>' in none_yet
    good = content[content.index('<tr id="connection-tested">') :].split("</tr>")[0]
    assert '<span class="ok">Last test OK</span>' in good
    assert "Connected as alice; sbatch found." in good
    assert '<time datetime="2026-03-04T05:06:00+00:00">' in good
    failed = content[content.index('<tr id="connection-broken">') :].split("</tr>")[0]
    assert '<span class="error">Last test failed</span>' in failed
    assert "The cluster refused the login." in failed
    assert "Retired cluster" not in content


def test_an_untested_credential_says_so(member_client, member, profile) -> None:
    save_password_credential(user=member, profile=profile, remote_username="alice", password="pw")
    content = member_client.get("/").content.decode()
    row = content[content.index(f'<tr id="connection-{profile.slug}">') :].split("</tr>")[0]
    assert "As <code>alice</code>, not tested yet." in row


def test_the_dashboard_needs_a_login_and_a_get(client, member_client) -> None:
    assert client.get("/").status_code == 302
    assert member_client.post("/").status_code == 405
