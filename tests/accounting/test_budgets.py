"""Budgets: their windows, what they have used and left (SQL), the submission gate (a hard budget refuses with
BUDGET_EXCEEDED and its figures, a soft one notes BUDGET_WARNING), account budgets, and the 80 % / 100 %
notifications written once per budget, window and threshold from `record_usage`'s transaction."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounting import services as accounting_services
from accounting.budget_alerts import notify_budget_thresholds
from accounting.budgets import BudgetExceeded, budget_outlook, status_of
from accounting.models import Budget, BudgetPeriod, JobUsage
from accounting.selectors import job_estimate, su_committed
from accounting.windows import Window, window_of
from jobs import services as job_services
from jobs.models import InputFile, Job, JobEvent, JobState
from jobs.pipeline_steps import current_steps
from notifications.models import Event, Notification, NotificationPreference
from templates_app.builtin import load_builtin_templates
from templates_app.models import Protocol
from tests.accounting.usage_rows import usage_rows
from tests.factories import WATER_RESOURCES, InputFileFactory, JobFactory, SchedulableProfileFactory, UserFactory
from tests.jobs.test_pipelines_fast import request as pipeline_request
from tests.jobs.test_sweeps import make_sweep, point_jobs, upload_to_first_point

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("period", "day", "expected"),
    [
        ("month", date(2028, 2, 10), Window(date(2028, 2, 1), date(2028, 2, 29))),
        ("month", date(2026, 12, 31), Window(date(2026, 12, 1), date(2026, 12, 31))),
        ("quarter", date(2026, 11, 5), Window(date(2026, 10, 1), date(2026, 12, 31))),
        ("quarter", date(2026, 2, 28), Window(date(2026, 1, 1), date(2026, 3, 31))),
        ("quarter", date(2026, 6, 30), Window(date(2026, 4, 1), date(2026, 6, 30))),
        ("year", date(2026, 7, 1), Window(date(2026, 1, 1), date(2026, 12, 31))),
    ],
)
def test_the_window_a_day_falls_in(period: str, day: date, expected: Window) -> None:
    assert window_of(period, day) == expected


def test_an_unknown_period_has_no_window() -> None:
    with pytest.raises(ValueError, match="fortnight"):
        window_of("fortnight", date(2026, 1, 1))


def at(day: date) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day, 12))


def test_a_member_budget_counts_only_their_usage_in_the_current_window(member, other_member) -> None:
    profile = SchedulableProfileFactory()
    today = timezone.localdate()
    window = window_of("month", today)
    usage_rows(member, profile, 2, ended_at=at(today), service_units="3")
    usage_rows(member, profile, 1, ended_at=at(window.start - timedelta(days=1)), service_units="50")  # last month
    usage_rows(other_member, profile, 1, ended_at=at(today), service_units="7")
    status = status_of(Budget.objects.create(member=member, period=BudgetPeriod.MONTH, limit_su=Decimal(10)))
    assert status.window == window
    assert status.used_su == Decimal(6)
    assert status.remaining_su == Decimal(4)
    assert status.fraction == Decimal("0.6")


def test_an_account_budget_counts_every_members_jobs_charged_to_it(member, other_member) -> None:
    profile = SchedulableProfileFactory()
    now = timezone.now()
    usage_rows(member, profile, 1, ended_at=now, service_units="4", account="chem")
    usage_rows(other_member, profile, 1, ended_at=now, service_units="5", account="chem")
    usage_rows(member, profile, 1, ended_at=now, service_units="100", account="bio")
    status = status_of(Budget.objects.create(account="chem", period=BudgetPeriod.YEAR, limit_su=Decimal(12)))
    assert (status.used_su, status.remaining_su) == (Decimal(9), Decimal(3))


def test_the_outlook_says_what_would_be_used_of_what_is_left(member) -> None:
    usage_rows(member, SchedulableProfileFactory(), 1, ended_at=timezone.now(), service_units="28")
    Budget.objects.create(member=member, period=BudgetPeriod.MONTH, limit_su=Decimal(40))
    [line] = budget_outlook(member_id=member.pk, charges={"": Decimal(12)})
    assert line.sentence == "This would use 12.00 SU of 12.00 SU left this month (member budget)."
    assert line.is_over is False
    [over] = budget_outlook(member_id=member.pk, charges={"": Decimal("12.5")})
    assert over.is_over is True
    assert over.sentence.endswith("That goes over the limit of 40.00 SU: it may still be submitted.")


def ready_job(credential, **fields) -> Job:
    return JobFactory(owner=credential.user, profile=credential.profile, ready=True, **fields)


def test_a_hard_budget_the_job_would_go_over_refuses_it_with_its_figures(credential, sent_tasks) -> None:
    job = ready_job(credential)
    estimate = job_estimate(job).service_units
    assert estimate > 0
    usage_rows(credential.user, credential.profile, 1, ended_at=timezone.now(), service_units="1")
    budget = Budget.objects.create(
        member=credential.user, period=BudgetPeriod.MONTH, limit_su=Decimal("1.0001"), is_hard=True
    )
    with pytest.raises(BudgetExceeded) as refused:
        job_services.request_submit(user=credential.user, job_id=job.pk)
    error = refused.value
    assert (error.code, error.http_status) == ("BUDGET_EXCEEDED", 409)
    window = window_of("month", timezone.localdate())
    assert error.details == {
        "budget_id": budget.pk,
        "scope": "member budget",
        "limit_su": "1.0001",
        "used_su": "1.0000",
        "committed_su": "0",
        "estimate_su": str(estimate),
        "period": "month",
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
    }
    assert error.user_message.startswith(f"This job would use {estimate:.2f} SU but ")
    assert Job.objects.get(pk=job.pk).state == JobState.READY
    assert sent_tasks == []


def test_jobs_on_their_way_hold_their_estimates_so_many_submissions_cannot_each_fit(credential, sent_tasks) -> None:
    first, second = ready_job(credential), ready_job(credential)
    estimate = job_estimate(first).service_units
    Budget.objects.create(
        member=credential.user, period=BudgetPeriod.MONTH, limit_su=estimate * Decimal("1.5"), is_hard=True
    )
    job_services.request_submit(user=credential.user, job_id=first.pk)  # fits: nothing accounted yet
    with pytest.raises(BudgetExceeded) as refused:  # would fit on accounted use alone (0), not with the first held
        job_services.request_submit(user=credential.user, job_id=second.pk)
    assert refused.value.details["committed_su"] == str(estimate)
    assert refused.value.details["used_su"] == "0"
    Job.objects.filter(pk=first.pk).update(state=JobState.COMPLETED, slurm_job_id="4242")
    (accounted,) = usage_rows(credential.user, credential.profile, 1, ended_at=timezone.now(), service_units="0.01")
    JobUsage.objects.filter(pk=accounted.pk).update(job=first)  # the first job's own accounting has arrived
    Job.objects.filter(pk=accounted.job_id).delete()  # the row's maker, left without one
    [line] = budget_outlook(member_id=credential.user.pk, charges={"": estimate})
    assert (line.status.committed_su, line.status.used_su) == (0, Decimal("0.0100"))
    assert not line.is_over


def test_a_soft_budget_lets_the_job_go_and_notes_a_warning(credential, sent_tasks) -> None:
    job = ready_job(credential)
    Budget.objects.create(member=credential.user, period=BudgetPeriod.MONTH, limit_su=Decimal("0.0001"))
    job_services.request_submit(user=credential.user, job_id=job.pk)
    assert Job.objects.get(pk=job.pk).state == JobState.SUBMITTING
    [warning] = JobEvent.objects.filter(job=job, kind="BUDGET_WARNING")
    assert warning.detail.startswith("BUDGET_WARNING: This would use ")
    assert "(member budget)" in warning.detail
    assert [name for name, _ in sent_tasks] == ["jobs.tasks.submit_job_task"]


def test_a_job_within_its_budgets_goes_without_a_note(credential, sent_tasks) -> None:
    job = ready_job(credential)
    Budget.objects.create(member=credential.user, period=BudgetPeriod.MONTH, limit_su=Decimal(1000), is_hard=True)
    job_services.request_submit(user=credential.user, job_id=job.pk)
    assert Job.objects.get(pk=job.pk).state == JobState.SUBMITTING
    assert JobEvent.objects.filter(job=job, kind="BUDGET_WARNING").exists() is False


def test_an_account_budget_refuses_only_jobs_charged_to_its_account(credential, sent_tasks) -> None:
    type(credential.profile).objects.filter(pk=credential.profile_id).update(allowed_accounts=["chem", "bio"])
    credential.profile.refresh_from_db()
    Budget.objects.create(account="chem", period=BudgetPeriod.QUARTER, limit_su=Decimal("0.0001"), is_hard=True)
    charged = ready_job(credential, resources={**WATER_RESOURCES, "account": "chem"})
    with pytest.raises(BudgetExceeded) as refused:
        job_services.request_submit(user=credential.user, job_id=charged.pk)
    assert refused.value.details["scope"] == "account budget (chem)"
    elsewhere = ready_job(credential, resources={**WATER_RESOURCES, "account": "bio"})
    job_services.request_submit(user=credential.user, job_id=elsewhere.pk)
    assert Job.objects.get(pk=elsewhere.pk).state == JobState.SUBMITTING


def test_submit_when_ready_refused_by_a_hard_budget_keeps_the_code_on_the_job(credential, sent_tasks) -> None:
    job = JobFactory(
        owner=credential.user, profile=credential.profile, state=JobState.UPLOADING, submit_when_ready=True
    )
    for name in ("water.psf", "water.pdb", "par_water.prm"):  # what the config reads, all on the cluster
        InputFileFactory(job=job, name=name, on_cluster=True)
    Budget.objects.create(member=credential.user, period=BudgetPeriod.MONTH, limit_su=Decimal("0.0001"), is_hard=True)
    job_services.refresh_readiness(job)
    stored = Job.objects.get(pk=job.pk)
    assert (stored.state, stored.error_code) == (JobState.READY, "BUDGET_EXCEEDED")
    assert JobEvent.objects.filter(job=job, kind="BUDGET_REFUSED").count() == 1
    assert sent_tasks == []


def wants_budget_mail(user) -> None:
    NotificationPreference.objects.create(user=user, email_enabled=True, events=[Event.BUDGET_REACHED])


def budget_notices() -> list[tuple[str, str]]:
    return sorted(
        (notification.recipient.username, notification.subject)
        for notification in Notification.objects.filter(event=Event.BUDGET_REACHED)
    )


def test_80_and_100_percent_are_told_once_each_to_the_member_and_the_lab_admins(member, lab_admin) -> None:
    for user in (member, lab_admin):
        wants_budget_mail(user)
    UserFactory(username="admin_without_prefs", is_staff=True)  # told nothing: no preferences saved
    profile = SchedulableProfileFactory()
    Budget.objects.create(member=member, period=BudgetPeriod.MONTH, limit_su=Decimal(10))
    usage_rows(member, profile, 1, ended_at=timezone.now(), service_units="7.9")
    assert notify_budget_thresholds(member_id=member.pk, accounts=[]) == 0
    usage_rows(member, profile, 1, ended_at=timezone.now(), service_units="0.1")
    assert notify_budget_thresholds(member_id=member.pk, accounts=[]) == 2
    assert notify_budget_thresholds(member_id=member.pk, accounts=[]) == 0  # the same window and threshold
    usage_rows(member, profile, 1, ended_at=timezone.now(), service_units="5")
    assert notify_budget_thresholds(member_id=member.pk, accounts=[]) == 2  # 100 % now; 80 % was told
    assert budget_notices() == [
        ("admin_t", "Budget at 100 %: member budget"),
        ("admin_t", "Budget at 80 %: member budget"),
        ("alice_t", "Budget at 100 %: member budget"),
        ("alice_t", "Budget at 80 %: member budget"),
    ]
    [full] = Notification.objects.filter(recipient=member, subject__contains="100 %")
    assert full.text.startswith("13.00 SU of alice_t's 10.00 SU budget are used this month")
    assert full.fields["threshold_percent"] == 100


def test_an_account_budget_tells_the_lab_admins_only(member, lab_admin) -> None:
    for user in (member, lab_admin):
        wants_budget_mail(user)
    Budget.objects.create(account="chem", period=BudgetPeriod.YEAR, limit_su=Decimal(1))
    usage_rows(member, SchedulableProfileFactory(), 1, ended_at=timezone.now(), service_units="2", account="chem")
    notify_budget_thresholds(member_id=member.pk, accounts=["chem"])
    assert budget_notices() == [
        ("admin_t", "Budget at 100 %: account budget (chem)"),
        ("admin_t", "Budget at 80 %: account budget (chem)"),
    ]


def test_record_usage_tells_the_budget_crossed_in_its_transaction(fake_cluster, credential) -> None:
    wants_budget_mail(credential.user)
    fake_cluster.scheduler.knows_usage("usage_finished.txt", "5562")
    now = timezone.now()
    JobFactory(  # purged from accounting: the portal's times, ended now (in the current window)
        owner=credential.user,
        profile=credential.profile,
        completed=True,
        slurm_job_id="999991",
        started_at=now - timedelta(hours=1),
        ended_at=now,
    )
    Budget.objects.create(member=credential.user, period=BudgetPeriod.MONTH, limit_su=Decimal("0.5"))
    accounting_services.record_usage(owner_id=credential.user_id, profile_id=credential.profile_id)
    assert [subject for _, subject in budget_notices()] == [
        "Budget at 100 %: member budget",
        "Budget at 80 %: member budget",
    ]


def test_a_runs_steps_are_gated_together(credential, sent_tasks) -> None:
    load_builtin_templates()
    protocol = Protocol.objects.get(slug="min-equil-prod")
    run = job_services.create_pipeline(user=credential.user, request=pipeline_request(protocol, credential.profile_id))
    steps = current_steps(run)
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        InputFile.objects.create(job=steps[0], name=name, state=InputFile.State.UPLOADED)
    Job.objects.filter(pk=steps[0].pk).update(state=JobState.READY)
    together = sum(job_estimate(step).service_units for step in steps)
    one_step = job_estimate(steps[0]).service_units
    Budget.objects.create(member=credential.user, period=BudgetPeriod.MONTH, limit_su=together - one_step, is_hard=True)
    with pytest.raises(BudgetExceeded) as refused:
        job_services.request_submit_pipeline(user=credential.user, pipeline_id=run.pk)
    assert refused.value.details["estimate_su"] == str(together)
    assert refused.value.user_message.startswith("This run would use ")
    assert {step.state for step in current_steps(run)} == {JobState.DRAFT, JobState.READY}
    assert sent_tasks == []


def test_a_sweeps_points_are_gated_together(credential, fake_cluster, sent_tasks) -> None:
    sweep = make_sweep(credential)
    upload_to_first_point(sweep, fake_cluster)
    job_services.advance_sweep(sweep_id=sweep.pk)
    points = point_jobs(sweep)
    every_point = sum(job_estimate(job).service_units for job in points)
    Budget.objects.create(member=credential.user, period=BudgetPeriod.YEAR, limit_su=every_point / 2, is_hard=True)
    with pytest.raises(BudgetExceeded) as refused:
        job_services.request_submit_sweep(user=credential.user, sweep_id=sweep.pk)
    assert refused.value.details["estimate_su"] == str(every_point)
    assert refused.value.user_message.startswith("This sweep would use ")
    assert JobState.SUBMITTING not in {job.state for job in point_jobs(sweep)}


def test_the_held_estimates_cost_the_same_queries_for_3_or_30_jobs_on_their_way(credential) -> None:
    counts = []
    for total in (3, 30):
        more = total - Job.objects.count()
        JobFactory.create_batch(more, owner=credential.user, profile=credential.profile, submitted=True)
        with CaptureQueriesContext(connection) as queries:
            committed = su_committed(owner_id=credential.user.pk)
        counts.append(len(queries.captured_queries))
        assert committed == total * job_estimate(Job.objects.first()).service_units
    assert counts[0] == counts[1]
