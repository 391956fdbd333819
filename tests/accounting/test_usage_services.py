"""accounting.services.record_usage against the fake member session (sacct answers recorded on the local cluster),
the rates, and the orders that finishing and beat's sweep place."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounting import services
from accounting.models import JobUsage
from accounting.orders import request_usage_accounting
from accounting.rates import Rates, charge, rates_for
from jobs import services as job_services
from portal.models import TaskOrder
from tests.factories import JobFactory
from tests.jobs.test_finish_fast import ended_job

pytestmark = pytest.mark.django_db


def finished_job(credential, slurm_job_id: str, **fields):
    return JobFactory(
        owner=credential.user, profile=credential.profile, completed=True, slurm_job_id=slurm_job_id, **fields
    )


def record(credential) -> int:
    """The one call of the service under test."""
    return services.record_usage(owner_id=credential.user_id, profile_id=credential.profile_id, task_id="usage-1")


def test_one_sacct_call_accounts_every_finished_job_of_the_group(fake_cluster, credential) -> None:
    fake_cluster.scheduler.knows_usage("usage_finished.txt", "5562", "5563", "5564")
    jobs = [finished_job(credential, job_id) for job_id in ("5562", "5563", "5564")]
    assert record(credential) == 3
    [sacct] = fake_cluster.ran("sacct")
    assert sacct[-1] == "--jobs=5562,5563,5564"
    usage = {row.job_id: row for row in JobUsage.objects.all()}
    two_cpus = usage[jobs[0].pk]
    assert (two_cpus.elapsed_s, two_cpus.cpu_time_s, two_cpus.cpus, two_cpus.memory_mb) == (4, 8, 2, 200)
    assert (two_cpus.partition, two_cpus.account, two_cpus.slurm_state) == ("normal", "lab", "COMPLETED")
    assert two_cpus.core_hours == Decimal("0.0022")  # 8 cpu-seconds
    assert two_cpus.service_units == Decimal("0.0022")  # the profile's default 1 SU per core-hour
    assert two_cpus.is_from_portal_times is False
    assert timezone.localtime(two_cpus.ended_at).isoformat().startswith("2026-12-06T03:02:37")
    assert usage[jobs[2].pk].slurm_state == "FAILED"


def test_a_second_run_writes_nothing_and_asks_nothing(fake_cluster, credential) -> None:
    fake_cluster.scheduler.knows_usage("usage_finished.txt", "5562")
    finished_job(credential, "5562")
    assert record(credential) == 1
    assert record(credential) == 0
    assert JobUsage.objects.count() == 1
    assert len(fake_cluster.ran("sacct")) == 1


def test_a_row_already_written_by_a_killed_run_is_not_doubled(fake_cluster, credential) -> None:
    fake_cluster.scheduler.knows_usage("usage_finished.txt", "5562", "5563")
    first, second = finished_job(credential, "5562"), finished_job(credential, "5563")
    record(credential)
    JobUsage.objects.filter(job=second).delete()  # as if the run died after the first row only (rows are one insert)
    assert record(credential) == 1
    assert sorted(JobUsage.objects.values_list("job_id", flat=True)) == sorted([first.pk, second.pk])


def test_a_job_accounting_no_longer_has_gets_the_portal_times_flagged(fake_cluster, credential) -> None:
    fake_cluster.scheduler.knows_usage("usage_finished.txt", "5562")
    now = timezone.now()
    purged = finished_job(
        credential,
        "999991",
        started_at=now - timedelta(minutes=30),
        ended_at=now,
        resources={
            "partition": "debug",
            "nodes": 1,
            "ntasks": 1,
            "cpus_per_task": 2,
            "memory_mb": None,
            "walltime_s": 3600,
            "gpus": 0,
            "account": None,
            "qos": None,
        },
    )
    assert record(credential) == 1
    usage = JobUsage.objects.get(job=purged)
    assert usage.is_from_portal_times is True
    assert (usage.elapsed_s, usage.cpus, usage.cpu_time_s) == (1800, 2, 2 * 1800)
    assert usage.core_hours == Decimal("1.0000")
    assert usage.partition == "debug"


def test_a_job_accounting_still_reports_running_waits_then_falls_back(fake_cluster, credential) -> None:
    fake_cluster.scheduler.knows_usage("usage_running_and_unknown.txt", "5569")
    job = finished_job(credential, "5569")
    assert record(credential) == 0
    type(job).objects.filter(pk=job.pk).update(finished_at=timezone.now() - services.ACCOUNTING_PATIENCE * 2)
    assert record(credential) == 1
    assert JobUsage.objects.get(job=job).is_from_portal_times is True


def test_partition_rates_override_the_profile_rates(fake_cluster, credential) -> None:
    profile = credential.profile
    profile.su_per_core_hour = Decimal("1.5")
    profile.su_rates_by_partition = {"debug": {"su_per_core_hour": "10"}}
    profile.save()
    fake_cluster.scheduler.knows_usage("usage_finished.txt", "5562", "5563")
    normal, debug = finished_job(credential, "5562"), finished_job(credential, "5563")
    record(credential)
    # 5562: 8 cpu-s on normal at 1.5; 5563: 4 cpu-s on debug at 10
    assert JobUsage.objects.get(job=normal).service_units == Decimal("0.0033")
    assert JobUsage.objects.get(job=debug).service_units == Decimal("0.0111")
    assert JobUsage.objects.get(job=debug).su_per_core_hour == Decimal("10")


def test_gpu_hours_are_gpus_times_elapsed_at_the_gpu_rate() -> None:
    rates = rates_for(
        su_per_core_hour=Decimal(1),
        su_per_gpu_hour=Decimal(5),
        by_partition={"gpu": {"su_per_gpu_hour": "20"}},
        partition="gpu",
    )
    assert rates == Rates(su_per_core_hour=Decimal(1), su_per_gpu_hour=Decimal(20))
    charged = charge(cpu_time_s=8 * 3600, gpu_time_s=2 * 1800, rates=rates)  # 8 core-hours, 2 GPUs for 30 min
    assert (charged.core_hours, charged.gpu_hours, charged.service_units) == (
        Decimal("8.0000"),
        Decimal("1.0000"),
        Decimal("28.0000"),
    )


def test_finishing_a_job_orders_its_groups_accounting(fake_cluster, credential, sent_tasks) -> None:
    job = ended_job(credential, fake_cluster, "44", failed=True)
    fake_cluster.scheduler.knows("status_live_and_purged", "44")
    job_services.finish_job(job_id=job.pk, task_id="finish-1")
    order = TaskOrder.objects.get(key=f"usage:{credential.user_id}:{credential.profile_id}")
    assert (order.task_name, order.args) == (
        "accounting.tasks.record_usage_task",
        [credential.user_id, credential.profile_id],
    )


def test_jobs_finishing_together_share_one_order(credential, sent_tasks) -> None:
    first = request_usage_accounting(owner_id=credential.user_id, profile_id=credential.profile_id)
    second = request_usage_accounting(owner_id=credential.user_id, profile_id=credential.profile_id)
    assert first == second
    assert TaskOrder.objects.filter(key__startswith="usage:").count() == 1


def test_beat_orders_groups_whose_order_was_lost(credential, sent_tasks) -> None:
    old = finished_job(credential, "5562")
    type(old).objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(minutes=10))
    JobFactory(completed=True, slurm_job_id="5563")  # another member's, finished just now: its order is on its way
    assert services.request_due_accounting() == 1
    keys = list(TaskOrder.objects.values_list("key", flat=True))
    assert keys == [f"usage:{credential.user_id}:{credential.profile_id}"]
