"""Usage reads: the one access rule, the grouped totals (SQL), su_used for budgets, the API and the page, and
their query counts (the same for 3 rows or 300)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounting.access import UsageScope, visible_usage
from accounting.selectors import GroupBy, Period, su_used, usage_report_for
from portal.errors import Forbidden
from tests.accounting.usage_rows import usage_rows
from tests.api.conftest import bearer
from tests.factories import SchedulableProfileFactory

pytestmark = pytest.mark.django_db

NOVEMBER = timezone.make_aware(datetime(2026, 11, 15, 12))
DECEMBER = timezone.make_aware(datetime(2026, 12, 3, 12))


@pytest.fixture
def lab(member, other_member, lab_admin):
    cluster_a = SchedulableProfileFactory(name="Alpha")
    cluster_b = SchedulableProfileFactory(name="Beta")
    usage_rows(member, cluster_a, 2, ended_at=NOVEMBER, partition="debug")
    usage_rows(member, cluster_b, 1, ended_at=DECEMBER, partition="gpu", gpu_hours="4", service_units="10")
    usage_rows(other_member, cluster_a, 3, ended_at=DECEMBER, partition="debug")
    return cluster_a, cluster_b


@pytest.mark.parametrize(
    ("who", "scope", "expected"),
    [
        ("member", UsageScope.MINE, 3),
        ("other_member", UsageScope.MINE, 3),
        ("lab_admin", UsageScope.MINE, 0),
        ("lab_admin", UsageScope.LAB, 6),
        ("inactive_member", UsageScope.MINE, 0),
        ("inactive_member", UsageScope.LAB, 0),
    ],
)
def test_who_reads_which_rows(request, lab, who, scope, expected) -> None:
    assert visible_usage(request.getfixturevalue(who), scope=scope).count() == expected


def test_a_member_asking_for_the_labs_usage_is_refused(lab, member) -> None:
    with pytest.raises(Forbidden) as refusal:
        visible_usage(member, scope=UsageScope.LAB)
    assert refusal.value.code == "USAGE_LAB_ONLY_ADMINS"


def test_the_lab_by_member_cluster_partition_and_month(lab, lab_admin) -> None:
    by = {
        group_by: {
            g.label: (g.jobs, g.core_hours, g.gpu_hours, g.service_units)
            for g in lab_report(lab_admin, group_by, Period()).groups
        }
        for group_by in GroupBy
    }
    two, three, zero = Decimal("2"), Decimal("3"), Decimal("0")
    assert by[GroupBy.MEMBER] == {
        "alice_t": (3, 3 * two, Decimal("4"), 2 * three + Decimal("10")),
        "bob_t": (3, 3 * two, zero, 3 * three),
    }
    assert by[GroupBy.CLUSTER] == {
        "Alpha": (5, 5 * two, zero, 5 * three),
        "Beta": (1, two, Decimal("4"), Decimal("10")),
    }
    assert set(by[GroupBy.PARTITION]) == {"Alpha / debug", "Beta / gpu"}
    assert by[GroupBy.MONTH] == {
        "2026-11": (2, 2 * two, zero, 2 * three),
        "2026-12": (4, 4 * two, Decimal("4"), 3 * three + Decimal("10")),
    }


def test_the_period_takes_jobs_ended_within_it(lab, lab_admin) -> None:
    def jobs_in(since: date | None, until: date | None) -> int:
        return lab_report(lab_admin, GroupBy.MEMBER, Period(since=since, until=until)).total.jobs

    assert jobs_in(date(2026, 12, 1), date(2026, 12, 3)) == 4  # a partial month: its rows
    assert jobs_in(None, date(2026, 12, 2)) == 2  # November whole (its sums), then December's first two days
    assert jobs_in(date(2026, 11, 16), None) == 4  # November from the 16th (after its jobs), December whole
    assert jobs_in(date(2026, 11, 15), date(2026, 12, 31)) == 6
    assert jobs_in(date(2026, 11, 1), date(2026, 11, 30)) == 2  # one whole month
    assert jobs_in(date(2026, 12, 4), date(2026, 12, 31)) == 0


def lab_report(admin, group_by: GroupBy, period: Period):
    return usage_report_for(admin, scope=UsageScope.LAB, group_by=group_by, period=period)


def test_su_used_for_budgets(lab, member) -> None:
    assert su_used(owner_id=member.pk, since=date(2026, 11, 1), until=date(2026, 11, 30)) == Decimal("6")
    assert su_used(owner_id=member.pk, since=date(2026, 11, 1), until=date(2026, 12, 31)) == Decimal("16")
    assert su_used(account="nobody", since=date(2026, 1, 1), until=date(2026, 12, 31)) == Decimal("0")
    with pytest.raises(ValueError, match="exactly one"):
        su_used(since=date(2026, 1, 1), until=date(2026, 12, 31))


def test_the_api_gives_a_member_their_own_and_refuses_the_labs(lab, member) -> None:
    client = Client(**bearer(member))
    answer = client.get("/api/v1/usage?group_by=cluster").json()
    assert answer["scope"] == "mine"
    assert [(g["label"], g["jobs"]) for g in answer["groups"]] == [("Alpha", 2), ("Beta", 1)]
    refused = client.get("/api/v1/usage?scope=lab")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "USAGE_LAB_ONLY_ADMINS")
    bad = client.get("/api/v1/usage?since=2026-12-05&until=2026-12-01")
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "USAGE_PERIOD_INVALID")
    wrong = client.get("/api/v1/usage?group_by=colour")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "INVALID_INPUT")


def test_the_api_csv_has_the_groups_and_the_total(lab, lab_admin) -> None:
    response = Client(**bearer(lab_admin)).get("/api/v1/usage/csv?group_by=member")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["member", "jobs", "core_hours", "gpu_hours", "service_units"]
    assert [row[:2] for row in rows[1:]] == [["alice_t", "3"], ["bob_t", "3"], ["Total", "6"]]


def test_the_page_shows_the_labs_usage_to_a_lab_admin_and_a_members_own(lab, member, lab_admin) -> None:
    admin_client, member_client = Client(), Client()
    admin_client.force_login(lab_admin)
    member_client.force_login(member)
    lab_page = admin_client.get("/usage/?group_by=member").content.decode()
    assert "The lab's usage by member" in lab_page
    assert "bob_t" in lab_page
    assert "alice_t" in lab_page
    own_page = member_client.get("/usage/?group_by=member&scope=lab").content.decode()
    assert "My usage" in own_page
    assert "bob_t" not in own_page
    assert 'data-months="[{&quot;month&quot;: &quot;2026-11&quot;' in own_page
    assert "/api/v1/usage/csv?scope=mine&amp;group_by=member" in own_page


def test_a_period_that_ends_before_it_starts_is_shown_with_its_code(lab, member) -> None:
    client = Client()
    client.force_login(member)
    page = client.get("/usage/?since=2026-12-05&until=2026-12-01").content.decode()
    assert "USAGE_PERIOD_INVALID" in page
    assert 'id="usage-table"' not in page


@pytest.mark.parametrize("url", ["/usage/?group_by=member", "/usage/?group_by=partition"])
def test_the_page_costs_the_same_queries_for_3_rows_or_300(member, lab_admin, url) -> None:
    client = Client()
    client.force_login(lab_admin)
    profile = SchedulableProfileFactory()
    usage_rows(member, profile, 3, ended_at=NOVEMBER)
    client.get(url)  # warm the session
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    usage_rows(member, profile, 297, ended_at=DECEMBER, partition="other")
    with CaptureQueriesContext(connection) as many:
        page = client.get(url).content.decode()
    assert "300" in page
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_api_costs_the_same_queries_for_3_rows_or_300(member, lab_admin) -> None:
    client = Client(**bearer(lab_admin))
    profile = SchedulableProfileFactory()
    usage_rows(member, profile, 3, ended_at=NOVEMBER)
    client.get("/api/v1/usage")  # the token's first use is recorded once
    with CaptureQueriesContext(connection) as few:
        assert client.get("/api/v1/usage?group_by=month").json()["total"]["jobs"] == 3
    usage_rows(member, profile, 297, ended_at=DECEMBER)
    with CaptureQueriesContext(connection) as many:
        assert client.get("/api/v1/usage?group_by=month").json()["total"]["jobs"] == 300
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_job_api_and_page_set_the_estimate_beside_what_was_used(member) -> None:
    profile = SchedulableProfileFactory()
    [row] = usage_rows(member, profile, 1, ended_at=DECEMBER, core_hours="0.5", service_units="0.75")
    job = row.job
    answer = Client(**bearer(member)).get(f"/api/v1/jobs/{job.pk}/usage").json()
    assert answer["estimate"] is not None
    assert Decimal(answer["actual"]["core_hours"]) == Decimal("0.5")
    assert Decimal(answer["actual"]["service_units"]) == Decimal("0.75")
    assert answer["actual"]["is_from_portal_times"] is False
    client = Client()
    client.force_login(member)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="job-usage-table"' in page
    assert "0.7500" in page


def test_another_members_job_usage_is_not_found(member, other_member) -> None:
    [row] = usage_rows(other_member, SchedulableProfileFactory(), 1, ended_at=DECEMBER)
    response = Client(**bearer(member)).get(f"/api/v1/jobs/{row.job_id}/usage")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "JOB_NOT_FOUND")
