"""The job status sync, submission and the job list at scale, on the local cluster and the dev database.

Four comparisons, each against a baseline measured in the same run:

- one sync cycle (`jobs.services.status_sync.sync_member_jobs` for each of 5 members, in-process) over 500
  held SLURM jobs, against the naive per-job loop (`statuses([id])` then `apply_status` for each job), both on pooled
  connections, so the ratio is what batching buys;
- the same cycle with 50 of those jobs active (10 a member; the other 450 are marked COMPLETED meanwhile):
  the cycle should grow with the member count, not the job count;
- `POST /api/v1/jobs/{id}/submit` (the 202) and the end-to-end time until the job has its SLURM id (a real
  Celery worker on a queue of its own does the submission), against one bare `ssh host sbatch` over a fresh
  OpenSSH connection;
- `GET /api/v1/jobs` for a member with 10,000 jobs against the same member with 10 (same query count), with
  page_size=10 (both pages full: the ratio is what the table size costs) and page_size=50 (the 10-job page then
  holds 10 items and the 10,000-job page 50, so that ratio also counts 40 more items rendered). The jobs
  table is VACUUM ANALYZEd after each bulk insert, as autovacuum would leave it.

Runs as root against `scripts/localcluster` and the database of `.env`. Everything it makes is removed before
it exits: its portal users (np_bench_1..5), its cluster profile ("bench-local") and jobs, the SLURM jobs
(`scancel --user`), its remote files, the temp file store and the worker. The cluster's Unix users stay (as
`localcluster add-user` leaves them, idempotent). Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.local_bench import (  # noqa: E402
    JOB_NAME,
    MEMBERS,
    RECIPE,
    Bench,
    localcluster,
    start_worker,
    stop_worker,
    timed,
    wait_until,
)
from bench.report import print_report, summarize, time_calls  # noqa: E402
from jobs.models import QUEUED_STATES, Job, JobState  # noqa: E402
from jobs.services.status_sync import apply_status, sync_member_jobs  # noqa: E402
from portal.celery import app as celery_app  # noqa: E402
from templates_app.models import Template, TemplateVersion  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT_DIR / "tests" / "fixtures" / "namd"

JOBS_PER_MEMBER = 100  # 500 in all
SMALL_PER_MEMBER = 10  # 50 in all
CYCLE_ROUNDS = 5
SUBMIT_JOBS = 6
LIST_REPEAT = 100  # page_size=10; page_size=50 gets half: all four stay under the 600/min API throttle
LIST_PAGES = (10, 50)
LIST_SMALL, LIST_LARGE = 10, 10_000

WATER_FILES = ("water.psf", "water.pdb", "par_water.prm")
VALUES = {
    "structure": "water.psf",
    "coordinates": "water.pdb",
    "parameters": "par_water.prm",
    "output_energies": 10,
    "restart_every": 50,
    "dcd_every": 50,
    "minimize_steps": 50,
    "cell_x": 30.0,
    "cell_y": 30.0,
    "cell_z": 30.0,
    "run_steps": 100,
}


# ------------------------------------------------------------------ 1 and 2: sync cycle vs per-job loop, growth


def bench_sync(bench: Bench) -> dict[str, Any]:
    profile = bench.profile
    assert profile is not None
    version = TemplateVersion.objects.order_by("pk").first()
    submitted_at = timezone.now() - timedelta(hours=1)
    started = time.perf_counter()
    rows: list[Job] = []
    for member in bench.members:
        client = bench.sessions[member.pk].slurm()
        script = bench.hold_script(member)
        for n in range(JOBS_PER_MEMBER):
            slurm_job_id = client.submit(script, JOB_NAME, extra_args=["--hold"])
            rows.append(
                Job(
                    owner=member,
                    profile=profile,
                    template_version=version,
                    title=f"bench sync {n}",
                    recipe_name=RECIPE,
                    project_dir=f"/home/{member.username}/namd_projects/bench-{n}",
                    scratch_dir=f"/scratch/{member.username}/bench-{n}",
                    state=JobState.PENDING,
                    slurm_job_id=slurm_job_id,
                    slurm_state="PENDING",
                    submitted_at=submitted_at,
                )
            )
    submit_s = time.perf_counter() - started
    Job.objects.bulk_create(rows)
    total = len(rows)
    by_member = {
        member.pk: list(Job.objects.filter(owner=member, profile=profile).order_by("pk").values_list("pk", flat=True))
        for member in bench.members
    }
    rest = [pk for pks in by_member.values() for pk in pks[SMALL_PER_MEMBER:]]
    small = total - len(rest)

    def cycle(expected: int) -> None:
        seen = 0
        for member in bench.members:
            report = sync_member_jobs(owner_id=member.pk, profile_id=profile.pk)
            assert not report.coalesced, "another sync of the bench's jobs ran meanwhile"
            seen += report.jobs
        assert seen == expected, f"the cycle saw {seen} jobs, not {expected}"

    def only_small(on: bool) -> None:
        jobs = Job.objects.filter(pk__in=rest)
        if on:
            jobs.update(state=JobState.COMPLETED, finished_at=timezone.now())
        else:
            jobs.update(state=JobState.PENDING, finished_at=None)

    cycle(total)  # warm: the first cycle writes SLURM's reason (JobHeldUser) on every row
    unknown = Job.objects.filter(pk__in=[pk for pks in by_member.values() for pk in pks]).exclude(
        state=JobState.PENDING, missing_since=None
    )
    assert not unknown.exists(), "SLURM did not report every held job as pending"
    only_small(True)
    cycle(small)
    only_small(False)
    large_s, small_s, exec_s, exec_small_s = [], [], [], []
    first = bench.members[0]
    first_ids = list(Job.objects.filter(pk__in=by_member[first.pk]).values_list("slurm_job_id", flat=True))
    for _ in range(CYCLE_ROUNDS):  # alternate, so that noise hurts both sizes alike
        exec_s.append(timed(lambda: bench.sessions[first.pk].slurm().statuses(first_ids)))
        exec_small_s.append(timed(lambda: bench.sessions[first.pk].slurm().statuses(first_ids[:SMALL_PER_MEMBER])))
        large_s.append(timed(lambda: cycle(total)))
        only_small(True)
        try:
            small_s.append(timed(lambda: cycle(small)))
        finally:
            only_small(False)

    # Baseline: the same question and the same state updates, one status call per job.
    per_job_s: list[float] = []

    def loop() -> None:
        now = timezone.now()
        for member in bench.members:
            client = bench.sessions[member.pk].slurm()
            jobs = list(
                Job.objects.filter(owner=member, profile=profile, state__in=QUEUED_STATES)
                .exclude(slurm_job_id="")
                .select_related("owner", "profile")
            )
            for job in jobs:
                started = time.perf_counter()
                status = client.statuses([job.slurm_job_id]).get(job.slurm_job_id)
                assert status is not None, f"SLURM does not know job {job.slurm_job_id}"
                apply_status(job, status, now)
                per_job_s.append(time.perf_counter() - started)
        assert len(per_job_s) == total, f"the loop saw {len(per_job_s)} jobs, not {total}"

    loop_s = timed(loop)
    bench.cancel_all()
    Job.objects.filter(pk__in=[job.pk for job in rows]).delete()
    return {
        "jobs": total,
        "small": small,
        "submit_s": submit_s,
        "large_s": large_s,
        "small_s": small_s,
        "exec_s": exec_s,
        "exec_small_s": exec_small_s,
        "loop_s": loop_s,
        "per_job_s": per_job_s,
    }


# ------------------------------------------------------------------ 3: submit latency and end to end vs bare sbatch


def bench_submit(bench: Bench, tmp: Path) -> dict[str, Any]:
    profile = bench.profile
    assert profile is not None
    member = bench.members[0]
    session = bench.sessions[member.pk]
    queue = f"bench-sync-{uuid.uuid4().hex[:12]}"
    file_store = tmp / "file-store"
    file_store.mkdir()
    settings.FILE_STORE = file_store
    celery_app.conf.task_default_queue = queue
    worker = start_worker(queue, file_store)
    try:
        client = Client(SERVER_NAME="localhost")
        client.force_login(member)
        template_id = Template.objects.get(slug="npt-equilibration").pk
        job_ids = []
        for n in range(SUBMIT_JOBS + 1):  # the first one warms the worker up, untimed
            created = client.post(
                "/api/v1/jobs",
                {
                    "template_id": template_id,
                    "cluster_id": profile.pk,
                    "recipe": RECIPE,
                    "title": f"bench submit {n}",
                    "values": VALUES,
                    "resources": {"partition": "debug", "walltime_s": 600},
                },
                content_type="application/json",
            )
            assert created.status_code == 201, created.content
            job = created.json()
            job_ids.append(job["id"])
            bench.remote_dirs[member.pk] += [job["project_dir"], job["scratch_dir"]]
            for name in WATER_FILES:
                with (FIXTURES / name).open("rb") as stream:
                    response = client.post(f"/api/v1/jobs/{job['id']}/inputs", {"file": stream})
                assert response.status_code == 202, response.content

        def all_ready() -> bool:
            states = set(Job.objects.filter(pk__in=job_ids).values_list("state", flat=True))
            return states == {JobState.READY}

        try:
            wait_until(all_ready, timeout_s=180, what="the inputs to reach the cluster (READY)", every_s=0.2)
        except TimeoutError:
            print((file_store.parent / "worker.log").read_text()[-3000:], file=sys.stderr)
            raise
        time.sleep(0.5)  # the worker finishes its last copy task

        known_hosts = tmp / "known_hosts"
        known_hosts.write_text(f"[{profile.login_host}]:{profile.login_port} {bench.host_key_line}\n")
        bare = [
            "ssh",
            "-i",
            str(bench.key_path(member.username)),
            "-p",
            str(profile.login_port),
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            f"{member.username}@{profile.login_host}",
            "sbatch",
            "--parsable",
            "--hold",
            bench.hold_script(member),
        ]
        bare_s, accepted_s, e2e_s = [], [], []
        for job_id in job_ids:  # alternate, so that noise hurts both alike
            started = time.perf_counter()
            result = subprocess.run(bare, capture_output=True, text=True, timeout=60, check=True)
            bare_s.append(time.perf_counter() - started)
            assert result.stdout.strip().isdigit(), result

            started = time.perf_counter()
            response = client.post(f"/api/v1/jobs/{job_id}/submit")
            accepted_s.append(time.perf_counter() - started)
            assert response.status_code == 202, response.content
            assert response.json()["task_id"], response.content

            def slurm_id(job_id: int = job_id) -> str:
                job = Job.objects.filter(pk=job_id).values("slurm_job_id", "state", "error_code").get()
                if job["state"] == JobState.READY and job["error_code"]:
                    raise RuntimeError(f"the submission of job {job_id} failed: {job['error_code']}")
                return job["slurm_job_id"]

            slurm_job_id = wait_until(slurm_id, timeout_s=60, what=f"job {job_id}'s SLURM id", every_s=0.01)
            e2e_s.append(time.perf_counter() - started)
            session.slurm().cancel(slurm_job_id)  # no NAMD run competing with the next sample
            time.sleep(0.5)  # the worker writes job.json after the id: let it be idle again
    finally:
        stop_worker(worker, queue)
    # The first round (a cold worker's first submission, ssh's first run) is the warm-up.
    return {"bare_s": bare_s[1:], "accepted_s": accepted_s[1:], "e2e_s": e2e_s[1:], "e2e_first_s": e2e_s[0]}


# ------------------------------------------------------------------ 4: job list, 10,000 jobs vs 10


def bench_list(bench: Bench) -> dict[str, Any]:
    profile = bench.profile
    assert profile is not None
    member = bench.members[-1]
    version = TemplateVersion.objects.order_by("pk").first()
    client = Client(SERVER_NAME="localhost")
    client.force_login(member)
    ended = timezone.now() - timedelta(days=1)

    def row(n: int) -> Job:
        return Job(
            owner=member,
            profile=profile,
            template_version=version,
            title=f"bench list {n}",
            recipe_name=RECIPE,
            project_dir=f"/home/{member.username}/namd_projects/list-{n}",
            scratch_dir=f"/scratch/{member.username}/list-{n}",
            state=JobState.COMPLETED,
            submitted_at=ended - timedelta(hours=1),
            started_at=ended - timedelta(minutes=50),
            ended_at=ended,
            finished_at=ended,
        )

    def add_jobs(count: int, start: int) -> None:
        Job.objects.bulk_create([row(start + n) for n in range(count)], batch_size=1000)
        with connection.cursor() as cursor:  # the table as autovacuum leaves it (statistics, visibility map)
            cursor.execute(f"VACUUM ANALYZE {Job._meta.db_table}")

    results: dict[tuple[int, int], tuple[dict[str, float], int]] = {}

    def measure(jobs: int) -> None:
        for page_size in LIST_PAGES:

            def request(page_size: int = page_size) -> None:
                response = client.get(f"/api/v1/jobs?page_size={page_size}")
                assert response.status_code == 200, response.content
                body = response.json()
                assert body["count"] == jobs, body["count"]
                assert len(body["items"]) == min(jobs, page_size), len(body["items"])

            with CaptureQueriesContext(connection) as captured:
                request()
            queries = len(captured.captured_queries)  # now: the next request's request_started resets the log
            repeat = LIST_REPEAT if page_size == LIST_PAGES[0] else LIST_REPEAT // 2
            results[jobs, page_size] = summarize(time_calls(request, repeat=repeat, warmup=10)), queries

    try:
        add_jobs(LIST_SMALL, 0)
        measure(LIST_SMALL)
        add_jobs(LIST_LARGE - LIST_SMALL, LIST_SMALL)
        measure(LIST_LARGE)
    finally:
        Job.objects.filter(owner=member).delete()
    return results


# ------------------------------------------------------------------ main


def main() -> None:
    logging.getLogger("django.request").setLevel(logging.ERROR)
    for name in ("clusters.ssh", "axes"):  # one INFO line per SSH command and per login: not the table
        logging.getLogger(name).setLevel(logging.WARNING)
    facts = dict(line.split("=", 1) for line in localcluster("env").splitlines() if "=" in line)
    bench = Bench(facts)
    with tempfile.TemporaryDirectory(prefix="np-bench-sync-") as tmp:
        try:
            bench.set_up()
            sync = bench_sync(bench)
            submit = bench_submit(bench, Path(tmp))
            listing = bench_list(bench)
        finally:
            bench.tear_down()

    jobs, small, members = sync["jobs"], sync["small"], len(MEMBERS)
    cycle_large_ms = statistics.median(sync["large_s"]) * 1000
    cycle_small_ms = statistics.median(sync["small_s"]) * 1000
    loop_ms = sync["loop_s"] * 1000
    bare_ms = statistics.median(submit["bare_s"]) * 1000
    accepted_ms = statistics.median(submit["accepted_s"]) * 1000
    e2e_ms = statistics.median(submit["e2e_s"]) * 1000
    small_page, large_page = LIST_PAGES
    list_ms = {key: row["median_ms"] for key, (row, _queries) in listing.items()}
    list_queries = {key: queries for key, (_row, queries) in listing.items()}
    rows = {
        f"sync cycle, {jobs} jobs / {members} members": summarize(sync["large_s"]),
        f"sync cycle, {small} jobs / {members} members": summarize(sync["small_s"]),
        f"  status exec, {JOBS_PER_MEMBER} ids (1 member)": summarize(sync["exec_s"]),
        f"  status exec, {SMALL_PER_MEMBER} ids (1 member)": summarize(sync["exec_small_s"]),
        f"per-job loop, {jobs} jobs (once)": summarize([sync["loop_s"]]),
        "  one job of the loop": summarize(sync["per_job_s"]),
        "bare ssh sbatch, fresh OpenSSH": summarize(submit["bare_s"]),
        "POST .../submit (202)": summarize(submit["accepted_s"]),
        "submit end to end, to SLURM id": summarize(submit["e2e_s"]),
    }
    for (count, page_size), (row, _queries) in listing.items():
        rows[f"GET /jobs, {count:,} jobs, page {page_size}"] = row
    print(f"setup: {jobs} held jobs (sbatch --hold) submitted over pooled sessions in {sync['submit_s']:.1f} s")
    print(f"sync: {CYCLE_ROUNDS} cycles of each size, alternating; the loop: statuses([id]) + apply_status per job")
    print(
        f"submit: {SUBMIT_JOBS} jobs (water box, 3 inputs) after an untimed first one (end to end "
        f"{submit['e2e_first_s'] * 1000:.0f} ms), one Celery worker (--pool solo); bare: one ssh each"
    )
    queries = ", ".join(f"{q} ({count:,} jobs, page_size={size})" for (count, size), q in list_queries.items())
    print(
        f"list: {LIST_REPEAT} requests (page_size={small_page}), {LIST_REPEAT // 2} (page_size={large_page}); "
        f"SQL queries per request: {queries}"
    )
    figures = {
        "bench": "sync",
        "sync_vs_loop_500": round(loop_ms / cycle_large_ms, 2),
        "sync_cycle_500_ms": round(cycle_large_ms, 3),
        "sync_cycle_50_ms": round(cycle_small_ms, 3),
        "status_exec_100_ids_ms": round(statistics.median(sync["exec_s"]) * 1000, 3),
        "status_exec_10_ids_ms": round(statistics.median(sync["exec_small_s"]) * 1000, 3),
        "loop_500_ms": round(loop_ms, 3),
        "sync_growth_50_to_500": round(cycle_large_ms / cycle_small_ms, 3),
        "submit_202_ms": round(accepted_ms, 3),
        "submit_e2e_ms": round(e2e_ms, 3),
        "bare_ssh_sbatch_ms": round(bare_ms, 3),
        "submit_e2e_vs_bare": round(e2e_ms / bare_ms, 3),
        "list_page_size": small_page,
        "list_10_ms": round(list_ms[LIST_SMALL, small_page], 3),
        "list_10k_ms": round(list_ms[LIST_LARGE, small_page], 3),
        "list_10k_vs_10": round(list_ms[LIST_LARGE, small_page] / list_ms[LIST_SMALL, small_page], 3),
        "list_queries_10": list_queries[LIST_SMALL, small_page],
        "list_queries_10k": list_queries[LIST_LARGE, small_page],
        "list_page50_10_ms": round(list_ms[LIST_SMALL, large_page], 3),
        "list_page50_10k_ms": round(list_ms[LIST_LARGE, large_page], 3),
        "list_page50_10k_vs_10": round(list_ms[LIST_LARGE, large_page] / list_ms[LIST_SMALL, large_page], 3),
    }
    print_report("Job sync, submission and list on the local cluster (loopback) and the dev database", rows, figures)


if __name__ == "__main__":
    main()
