"""The jobs list and job detail pages at scale, and the weight of the static files the pages ship.

Two comparisons, each against a baseline measured in the same run:

- `GET /jobs/` (first page, 25 rows) for a member with 10,000 jobs against the same member with 10, and the
  query count of each: the page must cost the same number of queries whatever the member has;
- `GET /jobs/<id>/` of one running job (40 events, a NAMD log read to step 4,000 of 10,000, a 30-file
  project listing) when its owner has 10,000 jobs against 10.

The jobs table is VACUUM ANALYZEd after each bulk insert, as autovacuum would leave it. Then the static
files: every stylesheet and script the pages link (read from the rendered pages), raw and gzipped, and all of
`frontend/static` (what the portal ships besides Django's admin).

Runs against the database of `.env` (no cluster needed). Everything it makes is removed before it exits: its
user (np_bench_pages), profile ("bench-pages") and jobs. Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.contrib.staticfiles import finders  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from bench.report import print_report, summarize, time_calls  # noqa: E402
from clusters.models import ClusterProfile, LaunchRecipe, Partition  # noqa: E402
from jobs.models import Job, JobEvent, JobProgress, JobState  # noqa: E402
from jobs.namd_log import LogProgress  # noqa: E402
from templates_app.builtin import load_builtin_templates  # noqa: E402
from templates_app.models import TemplateVersion  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[1]
LOG = PROJECT_DIR / "tests" / "fixtures" / "namd" / "logs" / "namd2_npt_pme.log"
MEMBER = "np_bench_pages"
PROFILE_SLUG = "bench-pages"
SMALL, LARGE = 10, 10_000
REPEAT = 60
EVENTS = 40
LISTED_FILES = 30
STATES = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.RUNNING, JobState.PENDING)
ASSET_RE = re.compile(r'<(?:script[^>]+src|link[^>]+href)="(/static/[^"]+\.(?:js|css))"')


def remove_bench_objects() -> None:
    Job.objects.filter(owner__username=MEMBER).delete()
    User.objects.filter(username=MEMBER).delete()
    ClusterProfile.objects.filter(slug=PROFILE_SLUG).delete()


def set_up() -> tuple[User, ClusterProfile, TemplateVersion]:
    remove_bench_objects()
    load_builtin_templates()
    member = User.objects.create_user(MEMBER, password=None)
    profile = ClusterProfile.objects.create(
        name="Bench: pages (temporary)", slug=PROFILE_SLUG, login_host="bench.invalid", login_port=22, is_active=True
    )
    Partition.objects.create(profile=profile, name="debug", is_default=True, max_walltime_s=3600, cores_per_node=2)
    LaunchRecipe.objects.create(profile=profile, name="cpu", kind="cpu", command="srun namd2 +p{cores} {config}")
    version = TemplateVersion.objects.filter(template__slug="npt-equilibration").order_by("-number").first()
    return member, profile, version


def job_row(member: User, profile: ClusterProfile, version: TemplateVersion, n: int) -> Job:
    ended = timezone.now() - timedelta(hours=n % 500)
    state = STATES[n % len(STATES)]
    return Job(
        owner=member,
        profile=profile,
        template_version=version,
        title=f"bench page {n}",
        recipe_name="cpu",
        project_dir=f"/home/{MEMBER}/namd_projects/page-{n}",
        scratch_dir=f"/scratch/{MEMBER}/page-{n}",
        state=state,
        slurm_job_id=str(100_000 + n),
        submitted_at=ended - timedelta(hours=1),
        started_at=ended - timedelta(minutes=50),
        ended_at=None if state in {"RUNNING", "PENDING"} else ended,
        values={"run_steps": 10_000},
        resources={"partition": "debug", "nodes": 1},
    )


def add_jobs(member: User, profile: ClusterProfile, version: TemplateVersion, count: int, start: int) -> None:
    Job.objects.bulk_create([job_row(member, profile, version, start + n) for n in range(count)], batch_size=1000)
    with connection.cursor() as cursor:  # the table as autovacuum leaves it (statistics, visibility map)
        cursor.execute(f"VACUUM ANALYZE {Job._meta.db_table}")


def running_job(member: User, profile: ClusterProfile, version: TemplateVersion) -> Job:
    """One running job as the sync leaves it: events, a log read part way, a project listing."""
    job = job_row(member, profile, version, 0)
    job.title, job.state, job.ended_at = "bench detail", JobState.RUNNING, None
    job.config_text = "structure water.psf\n" * 40
    job.batch_script = "#!/bin/bash\n#SBATCH --partition=debug\n" * 10
    job.save()
    events = [
        JobEvent(job=job, source="sync", old_state="PENDING", new_state="RUNNING", detail=f"event {n}")
        for n in range(EVENTS)
    ]
    JobEvent.objects.bulk_create(events)
    log = LogProgress()
    log.feed(LOG.read_bytes())
    now = timezone.now()
    listing = [
        {"path": f"frame{n}.dcd", "is_dir": False, "size_bytes": 1000 * n, "modified": now.timestamp()}
        for n in range(LISTED_FILES)
    ]
    JobProgress.objects.create(
        job=job,
        log_state=log.to_state(),
        log_tail=LOG.read_text()[-8000:],
        stderr_tail="",
        project_files=listing,
        files_listed_at=now,
        logs_fetched_at=now,
        last_timing_at=now,
    )
    return job


def measure(client: Client, path: str) -> tuple[dict[str, float], int]:
    def request() -> None:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)

    with CaptureQueriesContext(connection) as captured:
        request()
    queries = len(captured.captured_queries)
    return summarize(time_calls(request, repeat=REPEAT, warmup=10)), queries


def static_weight(pages: list[bytes]) -> dict[str, Any]:
    """Bytes of what the pages link (raw and gzipped), and of all of frontend/static."""
    linked = sorted({path for page in pages for path in ASSET_RE.findall(page.decode())})
    raw = gz = 0
    for url in linked:
        data = Path(finders.find(url.removeprefix("/static/"))).read_bytes()
        raw, gz = raw + len(data), gz + len(gzip.compress(data, 9))
    shipped = sum(p.stat().st_size for p in (PROJECT_DIR / "frontend" / "static").rglob("*") if p.is_file())
    return {"linked": linked, "linked_kb": raw / 1024, "linked_gzip_kb": gz / 1024, "shipped_kb": shipped / 1024}


def main() -> None:
    logging.getLogger("django.request").setLevel(logging.ERROR)
    logging.getLogger("axes").setLevel(logging.WARNING)  # one INFO line per login: not the table
    member, profile, version = set_up()
    client = Client(SERVER_NAME="localhost")
    client.force_login(member)
    try:
        detail = running_job(member, profile, version)
        add_jobs(member, profile, version, SMALL - 1, 1)
        results = {
            ("list", SMALL): measure(client, "/jobs/"),
            ("detail", SMALL): measure(client, f"/jobs/{detail.pk}/"),
        }
        add_jobs(member, profile, version, LARGE - SMALL, SMALL)
        results["list", LARGE] = measure(client, "/jobs/")
        results["detail", LARGE] = measure(client, f"/jobs/{detail.pk}/")
        pages = [client.get(path).content for path in ("/", "/jobs/", f"/jobs/{detail.pk}/", "/jobs/new/")]
        assert Job.objects.filter(owner=member).count() == LARGE
    finally:
        remove_bench_objects()
    weight = static_weight(pages)

    rows = {
        f"GET {page} page, {count:,} jobs ({queries} queries)": row for (page, count), (row, queries) in results.items()
    }
    print("The jobs list (first page of 25) and a running job's detail page, 10 vs 10,000 jobs of one member")
    ratio = {
        page: results[page, LARGE][0]["median_ms"] / results[page, SMALL][0]["median_ms"] for page in ("list", "detail")
    }
    figures = {
        "list_10k_vs_10": round(ratio["list"], 2),
        "detail_10k_vs_10": round(ratio["detail"], 2),
        "list_queries_10": results["list", SMALL][1],
        "list_queries_10k": results["list", LARGE][1],
        "detail_queries_10": results["detail", SMALL][1],
        "detail_queries_10k": results["detail", LARGE][1],
        "static_kb": round(weight["linked_kb"], 1),
        "static_gzip_kb": round(weight["linked_gzip_kb"], 1),
        "static_shipped_kb": round(weight["shipped_kb"], 1),
    }
    print(
        f"static files linked by the dashboard, list, detail and wizard pages: {len(weight['linked'])} files, "
        f"{weight['linked_kb']:.1f} KB ({weight['linked_gzip_kb']:.1f} KB gzipped); "
        f"all of frontend/static: {weight['shipped_kb']:.1f} KB"
    )
    for url in weight["linked"]:
        print(f"  {url}")
    print(f"ratios (10,000 / 10): list {ratio['list']:.2f}, detail {ratio['detail']:.2f}")
    print_report("", rows, figures)


if __name__ == "__main__":
    main()
