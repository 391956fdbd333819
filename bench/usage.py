"""The lab's usage page and its API with 100,000 finished jobs' usage rows against 1,000.

`GET /usage/?scope=lab&group_by=member` (the page: the groups, the total and the per-month chart) and
`GET /api/v1/usage?scope=lab&group_by=month` as a lab admin, first with 1,000 usage rows (20 members, 2
clusters, 2 partitions, 12 months), then with 100,000 of the same spread, measured in the same run:
`usage_100k_vs_1k` is the largest of the medians' ratios (these two and the period page below; target
≤ 2), and the query count of each request at each size (counted with `connection.execute_wrapper`; it
must not grow with the rows). Also the page for a period that starts and ends mid-month
(`usage_period_page_100k_vs_1k`): the monthly sums between, the rows of its two edge months (which grow
with the jobs of those months).

The notification outbox (bench/outbox.py): 100, then 1,000 job ends told as `finish_job` tells them, each told
twice and each delivery ordered twice, drained by a real Celery worker into mails to the local SMTP server:
`notify_1000_s` (from the first event to every delivery sent), `notify_1000_vs_100`, and `notify_duplicates`
(mails in the SMTP store beyond one per notification, plus notifications beyond one per job end: must be 0).

Runs against the database of `.env` and the local SMTP server (`make services`; no cluster needed). Everything it
makes is removed before it exits: its users (np_bench_usage*) with their notifications, profiles (bench-usage-*),
jobs, usage rows and mails. The tables are VACUUM ANALYZEd after
each bulk insert, as autovacuum would leave them. Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounting.models import JobUsage, UsageMonth  # noqa: E402
from accounting.services import roll_up_usage  # noqa: E402
from accounts.models import User  # noqa: E402
from bench import outbox  # noqa: E402
from bench.local_bench import start_worker, stop_worker  # noqa: E402
from bench.pipelines import QueryCount  # noqa: E402
from bench.report import print_report, summarize, time_calls  # noqa: E402
from clusters.models import ClusterProfile  # noqa: E402
from jobs.models import Job  # noqa: E402
from portal.celery import app as celery_app  # noqa: E402
from portal.models import TaskOrder  # noqa: E402
from templates_app.builtin import load_builtin_templates  # noqa: E402
from templates_app.models import TemplateVersion  # noqa: E402

started_at = timezone.now()
PREFIX = "np_bench_usage"
PROFILE_PREFIX = "bench-usage-"
MEMBERS = 20
SMALL, LARGE = 1_000, 100_000
MONTHS = 12
NOTIFY_SMALL, NOTIFY_LARGE = 100, 1_000
REPEAT = 30
BATCH = 5_000
URLS = {"page": "/usage/?scope=lab&group_by=member", "api": "/api/v1/usage?scope=lab&group_by=month"}
# A period starting and ending mid-month: the monthly sums between, the rows of the two edge months.
PERIOD_URL = "/usage/?scope=lab&group_by=member&since={since}&until={until}"


def remove_bench_objects() -> None:
    JobUsage.objects.filter(owner__username__startswith=PREFIX).delete()
    Job.objects.filter(owner__username__startswith=PREFIX).delete()
    User.objects.filter(username__startswith=PREFIX).delete()
    ClusterProfile.objects.filter(slug__startswith=PROFILE_PREFIX).delete()


def set_up() -> tuple[User, list[User], list[ClusterProfile], TemplateVersion]:
    remove_bench_objects()
    load_builtin_templates()
    admin = User.objects.create_user(f"{PREFIX}_admin", password=None, is_staff=True)
    members = [User.objects.create_user(f"{PREFIX}_{n}", password=None) for n in range(MEMBERS)]
    profiles = [
        ClusterProfile.objects.create(
            name=f"Bench: usage {name} (temporary)", slug=f"{PROFILE_PREFIX}{name}", login_host="bench.invalid"
        )
        for name in ("a", "b")
    ]
    version = TemplateVersion.objects.filter(template__slug="npt-equilibration").order_by("-number").first()
    return admin, members, profiles, version


def add_rows(
    members: list[User], profiles: list[ClusterProfile], version: TemplateVersion, count: int, start: int
) -> None:
    """`count` finished jobs with a usage row each, spread over members, clusters, partitions and months."""
    now = timezone.now()
    for offset in range(0, count, BATCH):
        numbers = range(start + offset, start + min(offset + BATCH, count))
        jobs = []
        for n in numbers:
            ended = now - timedelta(days=(n % (MONTHS * 30)), minutes=n % 1440)
            jobs.append(
                outbox.finished_job(
                    members[n % MEMBERS],
                    profiles[n % 2],
                    version,
                    name=f"bench usage {n}",
                    slurm_job_id=str(500_000 + n),
                    ended=ended,
                )
            )
        jobs = Job.objects.bulk_create(jobs)
        JobUsage.objects.bulk_create(
            JobUsage(
                job=job,
                owner=job.owner,
                profile=job.profile,
                partition=("debug", "gpu")[n % 2 == 0 and n % 3 == 0],
                account="lab",
                slurm_state="COMPLETED",
                started_at=job.started_at,
                ended_at=job.ended_at,
                elapsed_s=3600,
                cpu_time_s=7200,
                cpus=2,
                nodes=1,
                gpus=n % 3 == 0,
                core_hours=Decimal("2.0000"),
                gpu_hours=Decimal("1.0000") if n % 3 == 0 else Decimal(0),
                service_units=Decimal("3.5000"),
                su_per_core_hour=Decimal("1.5"),
                su_per_gpu_hour=Decimal("0.5"),
            )
            for n, job in zip(numbers, jobs, strict=True)
        )
    roll_up_usage(owner_ids=[member.pk for member in members])  # as record_usage does with the rows it writes
    with connection.cursor() as cursor:  # as autovacuum leaves them (statistics, visibility map)
        for model in (Job, JobUsage, UsageMonth):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def measure(client: Client, url: str) -> tuple[dict[str, float], int]:
    def request() -> None:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])

    request()  # the session's and the token's first use
    counted = QueryCount()
    with connection.execute_wrapper(counted):
        request()
    return summarize(time_calls(request, repeat=REPEAT, warmup=3)), counted.queries


def measure_outbox(members: list[User], profile: ClusterProfile, version: TemplateVersion) -> dict[str, dict]:
    """The outbox drained by a real Celery worker to the local SMTP server: NOTIFY_SMALL events, then NOTIFY_LARGE."""
    with tempfile.TemporaryDirectory(prefix="np-bench-usage-") as tmp:
        queue = f"bench-usage-{uuid.uuid4().hex[:12]}"
        file_store = Path(tmp) / "file-store"
        file_store.mkdir()
        celery_app.conf.task_default_queue = queue
        worker = start_worker(queue, file_store)
        try:
            return {
                str(count): outbox.drain(members, profile, version, count) for count in (NOTIFY_SMALL, NOTIFY_LARGE)
            }
        finally:
            stop_worker(worker, queue)
            TaskOrder.objects.filter(created_at__gte=started_at, task_name__startswith="notifications.").delete()


def main() -> None:
    logging.getLogger("django.request").setLevel(logging.ERROR)
    rows: dict[str, dict[str, float]] = {}
    queries: dict[str, int] = {}
    try:
        admin, members, profiles, version = set_up()
        drained = measure_outbox(members, profiles[0], version)
        client = Client(SERVER_NAME="localhost")
        client.force_login(admin)
        add_rows(members, profiles, version, SMALL, 0)
        today = timezone.localdate()
        urls = {
            **URLS,
            "period": PERIOD_URL.format(since=today - timedelta(days=200), until=today - timedelta(days=20)),
        }
        for kind, url in urls.items():
            rows[f"{kind} 1k rows"], queries[f"{kind}_1k"] = measure(client, url)
        add_rows(members, profiles, version, LARGE - SMALL, SMALL)
        for kind, url in urls.items():
            rows[f"{kind} 100k rows"], queries[f"{kind}_100k"] = measure(client, url)
    finally:
        remove_bench_objects()
    ratios = {
        kind: rows[f"{kind} 100k rows"]["median_ms"] / rows[f"{kind} 1k rows"]["median_ms"]
        for kind in (*URLS, "period")
    }
    figures: dict[str, Any] = {
        "usage_100k_vs_1k": round(max(ratios.values()), 3),
        "usage_page_100k_vs_1k": round(ratios["page"], 3),
        "usage_api_100k_vs_1k": round(ratios["api"], 3),
        "usage_period_page_100k_vs_1k": round(ratios["period"], 3),
        "usage_page_100k_ms": round(rows["page 100k rows"]["median_ms"], 3),
        "usage_api_100k_ms": round(rows["api 100k rows"]["median_ms"], 3),
        "usage_queries": queries,
        "usage_queries_constant": queries["page_1k"] == queries["page_100k"]
        and queries["api_1k"] == queries["api_100k"],
        "notify_1000_s": round(drained[str(NOTIFY_LARGE)]["seconds"], 3),
        "notify_100_s": round(drained[str(NOTIFY_SMALL)]["seconds"], 3),
        "notify_1000_vs_100": round(drained[str(NOTIFY_LARGE)]["seconds"] / drained[str(NOTIFY_SMALL)]["seconds"], 3),
        "notify_mails": drained[str(NOTIFY_LARGE)]["mails"],
        "notify_duplicates": sum(int(found["duplicates"]) for found in drained.values()),
    }
    for count, found in drained.items():
        rows[f"outbox: {count} job ends to mails"] = {
            "median_ms": found["seconds"] * 1000,
            "p95_ms": found["seconds"] * 1000,
            "per_s": found["mails"] / found["seconds"],
        }
    print_report("Usage: the lab's page and API, 100,000 usage rows vs 1,000", rows, figures)


if __name__ == "__main__":
    main()
