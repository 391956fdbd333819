"""The activity page: remote commands run in the member's name (admins: everyone's), filters and pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from clusters.models import RemoteCommandRecord
from jobs.models import Job
from templates_app.batch_script import job_name
from tests.factories import ClusterProfileFactory
from tests.jobs.unit_jobs import new_job

pytestmark = pytest.mark.django_db

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RECORD_ID_RE = re.compile(rb'<tr id="command-(\d+)">')


def record(user, profile, argv, *, minutes=0, **fields) -> RemoteCommandRecord:
    return RemoteCommandRecord.objects.create(
        user=user, profile=profile, argv=argv, started_at=START + timedelta(minutes=minutes), **fields
    )


def shown(response) -> list[int]:
    assert response.status_code == 200
    return [int(found) for found in RECORD_ID_RE.findall(response.content)]


def test_a_member_sees_only_their_own_commands_newest_first(member_client, member, other_member, profile) -> None:
    older = record(member, profile, ["sinfo", "--noheader"], minutes=1)
    newer = record(member, profile, ["squeue", "--me"], minutes=2)
    record(other_member, profile, ["hostname"], minutes=3)
    response = member_client.get("/activity/")
    assert shown(response) == [newer.pk, older.pk]
    assert b"hostname" not in response.content
    assert b'name="member"' not in response.content  # no member filter for members


def test_a_member_cannot_use_the_member_filter_to_see_others(member_client, member, other_member, profile) -> None:
    mine = record(member, profile, ["true"])
    record(other_member, profile, ["false"])
    assert shown(member_client.get(f"/activity/?member={other_member.pk}")) == [mine.pk]


def test_an_admin_sees_everyones_commands_with_a_member_column_and_filter(
    client, lab_admin, member, other_member, profile
) -> None:
    alices = record(member, profile, ["true"], minutes=1)
    bobs = record(other_member, profile, ["false"], minutes=2)
    client.force_login(lab_admin)
    response = client.get("/activity/")
    assert shown(response) == [bobs.pk, alices.pk]
    assert b'<th scope="col">Member</th>' in response.content
    assert b"<td>bob_t</td>" in response.content
    assert shown(client.get(f"/activity/?member={member.pk}")) == [alices.pk]
    options = re.findall(rb'<option value="(\d+)">(\w+)</option>', response.content)
    assert (str(member.pk).encode(), b"alice_t") in options


def test_filter_by_cluster(member_client, member, profile) -> None:
    other_cluster = ClusterProfileFactory(name="Second cluster")
    here = record(member, profile, ["true"])
    there = record(member, other_cluster, ["true"])
    assert shown(member_client.get(f"/activity/?cluster={profile.pk}")) == [here.pk]
    assert shown(member_client.get(f"/activity/?cluster={other_cluster.pk}")) == [there.pk]


def test_filter_by_job_matches_its_dirs_its_slurm_name_and_its_scancel(member_client, member, profile) -> None:
    job = new_job(member, profile, title="water box")
    Job.objects.filter(pk=job.pk).update(slurm_job_id="812")
    job.refresh_from_db()
    other_job = new_job(member, profile, title="another")
    Job.objects.filter(pk=other_job.pk).update(slurm_job_id="8121")
    name = job_name(job.uuid, job.title)
    matching = [
        record(member, profile, ["mkdir", "-p", "--", job.project_dir, job.scratch_dir], minutes=1),
        record(member, profile, ["sbatch", f"--job-name={name}", f"{job.project_dir}/job.sbatch"], minutes=2),
        record(member, profile, ["squeue", "--me", f"--name={name}"], minutes=3),
        record(member, profile, ["dd", f"if={job.scratch_dir}/slurm-812.out", "skip=0"], minutes=4),
        record(member, profile, ["scancel", "--", "812"], minutes=5),
    ]
    record(member, profile, ["mkdir", "-p", "--", other_job.project_dir], minutes=6)
    record(member, profile, ["scancel", "--", "8121"], minutes=7)
    record(member, profile, ["squeue", "--noheader", "--jobs=812,8121"], minutes=8)  # a whole group's status
    response = member_client.get(f"/activity/?job={job.pk}")
    assert shown(response) == [entry.pk for entry in reversed(matching)]
    assert f'<option value="{job.pk}" selected>#{job.pk} water box</option>'.encode() in response.content


def test_filter_by_job_for_an_admin_uses_the_owners_records(client, lab_admin, member, profile) -> None:
    job = new_job(member, profile)
    mine = record(member, profile, ["rm", "-rf", "--", job.project_dir])
    record(lab_admin, profile, ["ls", job.project_dir])  # the same path in someone else's name
    client.force_login(lab_admin)
    assert shown(client.get(f"/activity/?job={job.pk}")) == [mine.pk]


def test_another_members_job_cannot_be_used_as_a_filter(member_client, member, other_member, profile) -> None:
    theirs = new_job(other_member, profile, title="bob's membrane")
    record(other_member, profile, ["mkdir", "-p", "--", theirs.project_dir])
    record(member, profile, ["true"])
    response = member_client.get(f"/activity/?job={theirs.pk}")
    assert shown(response) == []
    assert b'aria-invalid="true"' in response.content
    assert b'id="id_job_error"' in response.content
    assert b"bob&#x27;s membrane" not in response.content


def test_a_job_older_than_the_recent_ones_stays_selectable(member_client, member, profile) -> None:
    old = new_job(member, profile, title="very old")
    template_version = old.template_version
    Job.objects.bulk_create(
        Job(
            owner=member,
            profile=profile,
            template_version=template_version,
            title=f"later {n}",
            project_dir=f"/p/later-{n}",
            scratch_dir=f"/s/later-{n}",
        )
        for n in range(100)
    )
    hit = record(member, profile, ["rsync", "-a", "--", f"{old.scratch_dir}/", f"{old.project_dir}/"])
    response = member_client.get(f"/activity/?job={old.pk}")
    assert shown(response) == [hit.pk]
    assert f'<option value="{old.pk}" selected>#{old.pk} very old</option>'.encode() in response.content


@pytest.mark.parametrize("query", ["cluster=abc", "job=abc", "cluster=999999"])
def test_a_bad_filter_is_reported_and_lists_nothing(member_client, member, profile, query) -> None:
    record(member, profile, ["true"])
    response = member_client.get(f"/activity/?{query}")
    assert shown(response) == []
    assert f'id="id_{query.split("=")[0]}_error"'.encode() in response.content


def test_each_row_shows_the_command_result_duration_and_bytes(member_client, member, profile) -> None:
    ok = record(
        member,
        profile,
        ["echo", "two words", "it's"],
        exit_code=0,
        duration_ms=42,
        bytes_sent=2048,
        bytes_received=5 * 1024 * 1024,
        minutes=3,
    )
    record(member, profile, ["false"], exit_code=1, minutes=2)
    record(member, profile, ["sinfo"], error_code="TIMEOUT", minutes=1)
    html = member_client.get("/activity/").content.decode()
    row = html[html.index(f'<tr id="command-{ok.pk}">') :].split("</tr>")[0]
    assert "<code>echo &#x27;two words&#x27; &#x27;it&#x27;&quot;&#x27;&quot;&#x27;s&#x27;</code>" in row
    assert '<span class="ok">exit 0</span>' in row
    assert '<td class="num">42 ms</td>' in row
    assert '<td class="num">2.0\xa0KB</td>' in row
    assert '<td class="num">5.0\xa0MB</td>' in row
    assert '<time datetime="2026-05-01T12:03:00+00:00">2026-05-01 12:03:00</time>' in row
    assert '<span class="warn">exit 1</span>' in html
    assert '<span class="error">TIMEOUT</span>' in html


def test_commands_come_in_pages_of_50(member_client, member, profile) -> None:
    records = [record(member, profile, ["true", str(n)], minutes=n) for n in range(55)]
    first = member_client.get(f"/activity/?cluster={profile.pk}")
    assert shown(first) == [entry.pk for entry in reversed(records)][:50]
    assert f'href="?cluster={profile.pk}&amp;page=2" rel="next"'.encode() in first.content
    second = member_client.get(f"/activity/?cluster={profile.pk}&page=2")
    assert shown(second) == [entry.pk for entry in reversed(records)][50:]


def test_the_activity_page_needs_a_login(client) -> None:
    assert client.get("/activity/").status_code == 302
