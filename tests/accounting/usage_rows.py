"""Usage rows for the read tests: one real job made by the factory, copies of it in bulk, a usage row each, and
the monthly sums rolled up as `record_usage` rolls them up."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from decimal import Decimal

from accounting.models import JobUsage
from accounting.services import roll_up_usage
from accounts.models import User
from clusters.models import ClusterProfile
from jobs.models import Job
from tests.factories import JobFactory

SLURM_IDS = itertools.count(900000)  # unique per cluster (job_unique_slurm_id)


def usage_rows(
    owner: User,
    profile: ClusterProfile,
    count: int,
    *,
    ended_at: datetime,
    partition: str = "debug",
    core_hours: str = "2",
    gpu_hours: str = "0",
    service_units: str = "3",
    account: str = "",
) -> list[JobUsage]:
    """`count` finished jobs of `owner` on `profile`, each with a usage row of these figures."""
    model = JobFactory(owner=owner, profile=profile, completed=True)
    copies = []
    for _ in range(count - 1):
        copy = Job.objects.get(pk=model.pk)
        copy.pk = None
        copy.uuid = uuid.uuid4()
        copy.slurm_job_id = str(next(SLURM_IDS))
        copies.append(copy)
    jobs = [model, *Job.objects.bulk_create(copies)]
    rows = JobUsage.objects.bulk_create(
        JobUsage(
            job=job,
            owner=owner,
            profile=profile,
            partition=partition,
            account=account,
            ended_at=ended_at,
            elapsed_s=3600,
            cpu_time_s=7200,
            core_hours=Decimal(core_hours),
            gpu_hours=Decimal(gpu_hours),
            service_units=Decimal(service_units),
            su_per_core_hour=Decimal("1.5"),
            su_per_gpu_hour=Decimal(0),
        )
        for job in jobs
    )
    roll_up_usage(owner_ids=[owner.pk], profile_id=profile.pk)  # as record_usage does with its rows
    return rows
