"""Pipelines and sweeps at scale, on the local cluster and the dev database.

Four comparisons, each against a baseline measured in the same run:

- submitting a 12-step pipeline (NPT equilibration, then production-restart x 11, the water box) through
  `POST /api/v1/pipelines/{id}/submit` and a real Celery worker, until every step has its SLURM id and the
  worker is done, against 12 single jobs of the same templates submitted one by one the same way. The remote
  commands are counted from their records (every command run over SSH is one RemoteCommandRecord): those that
  queue in SLURM (`sbatch`, or the chain's one `bash -s`) and all of them;
- one sync cycle (`sync_member_jobs` for each of 5 members) over 300 held SLURM jobs that are 50 pipeline runs x
  6 steps, against the same 300 jobs as single jobs (the same SLURM jobs; rounds alternate);
- a 200-point sweep (a grid over temperature x seed of the NPT equilibration) created through the API, its
  inputs uploaded once, submitted, until every point has its SLURM id (`sweep_200_s`);
- the sweep page (`/sweeps/<id>/`) of those 200 points against a 10-point sweep made and submitted the same way
  (`sweep_page_200_vs_10`), every point's progress holding a recorded NAMD log: the page's totals cover every
  point and its table shows the first page of rows (25 of 200, all 10); and `GET /api/v1/sweeps/{id}`, which
  returns every row (`sweep_api_200_vs_10`), with their query counts.

Runs as root against `scripts/localcluster` and the database of `.env`. Everything it makes is removed before it
exits (as bench/sync.py: its users np_bench_1..5, its profile, jobs, runs and sweeps, its protocol, the SLURM
jobs, the remote files, the temp file store and the worker). Prints a table, then one JSON object last.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.local_bench import (  # noqa: E402
    JOB_NAME,
    RECIPE,
    Bench,
    localcluster,
    start_worker,
    stop_worker,
    timed,
    wait_until,
)
from bench.report import print_report, summarize, time_calls  # noqa: E402
from clusters.models import RemoteCommandRecord  # noqa: E402
from frontend.views.sweeps import POINTS_PER_PAGE  # noqa: E402
from jobs.models import Job, JobProgress, JobState, Pipeline, SweepPoint  # noqa: E402
from jobs.namd_log import LogProgress  # noqa: E402
from jobs.services.status_sync import sync_member_jobs  # noqa: E402
from portal.celery import app as celery_app  # noqa: E402
from portal.models import TaskOrder  # noqa: E402
from templates_app.models import Protocol, ProtocolStage, Template, TemplateVersion  # noqa: E402
from templates_app.protocol_services import save_protocol  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT_DIR / "tests" / "fixtures" / "namd"
PROTOCOL_SLUG = "bench-twelve-steps"
PIPELINE_STEPS = 12
SYNC_RUNS, SYNC_STEPS = 50, 6  # 300 jobs: 10 runs a member
CYCLE_ROUNDS = 5
SWEEP_POINTS, SMALL_SWEEP = 200, 10
PAGE_REPEAT = 20

WATER_FILES = ("water.psf", "water.pdb", "par_water.prm")
WATER = {"structure": "water.psf", "coordinates": "water.pdb", "parameters": "par_water.prm"}
SMALL_RUN = {"output_energies": 10, "restart_every": 50, "dcd_every": 50, "run_steps": 100}
CELL = {"cell_x": 30.0, "cell_y": 30.0, "cell_z": 30.0}
RESOURCES = {"partition": "debug", "walltime_s": 600}


def twelve_step_protocol() -> Protocol:
    """NPT equilibration from the member's inputs, then 11 production segments, each from the one before."""
    Protocol.objects.filter(slug=PROTOCOL_SLUG).delete()
    stages = [
        ProtocolStage(
            position=1,
            name="equilibration",
            template=Template.objects.get(slug="npt-equilibration"),
            continuation="first",
            values={"output_name": "equilibration"},
        ),
        ProtocolStage(
            position=2,
            name="production",
            template=Template.objects.get(slug="production-restart"),
            repeat=PIPELINE_STEPS - 1,
            continuation="restart",
            values={"output_name": "production"},
        ),
    ]
    protocol = Protocol(name="Bench: twelve steps (temporary)", slug=PROTOCOL_SLUG, description="bench/pipelines.py")
    return save_protocol(protocol=protocol, stages=stages)


class CommandLog:
    """The worker's log (shown when a wait fails), and the remote commands run on the bench's cluster from a mark
    on: every exec over SSH is one RemoteCommandRecord, with its argv."""

    def __init__(self, path: Path, profile_id: int) -> None:
        self.path = path
        self.profile_id = profile_id
        self.since = timezone.now()

    def mark(self) -> None:
        self.since = timezone.now()

    def execs(self) -> list[list[str]]:
        records = RemoteCommandRecord.objects.filter(profile_id=self.profile_id, started_at__gte=self.since)
        return [[str(part) for part in argv] for argv in records.order_by("started_at").values_list("argv", flat=True)]


def queues_in_slurm(argv: list[str]) -> bool:
    return bool(argv) and (argv[0] == "sbatch" or argv[:2] == ["bash", "-s"])


def upload(client: Client, job_id: int) -> None:
    for name in WATER_FILES:
        with (FIXTURES / name).open("rb") as stream:
            response = client.post(f"/api/v1/jobs/{job_id}/inputs", {"file": stream})
        assert response.status_code == 202, response.content


def settled(job_ids: list[int], state: str, *, timeout_s: float, what: str, log: Path) -> None:
    def check() -> bool:
        states = Counter(Job.objects.filter(pk__in=job_ids).values_list("state", flat=True))
        return states == Counter({state: len(job_ids)})

    try:
        wait_until(check, timeout_s=timeout_s, what=what, every_s=0.2)
    except TimeoutError:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise


def all_queued(job_ids: list[int]) -> bool:
    return not Job.objects.filter(pk__in=job_ids, slurm_job_id="").exists()


BENCH_STARTED = timezone.now()


def worker_idle() -> bool:
    """No task order the bench made is open (a finish of a job the sync saw cancelled is one too)."""
    return not TaskOrder.objects.filter(done_at=None, created_at__gte=BENCH_STARTED).exists()


# ------------------------------------------------------------------ 1: a 12-step pipeline vs 12 single jobs


def bench_submit(bench: Bench, client: Client, log: CommandLog) -> dict[str, Any]:
    profile, member = bench.profile, bench.members[0]
    assert profile is not None
    protocol = twelve_step_protocol()
    created = client.post(
        "/api/v1/pipelines",
        {
            "protocol_id": protocol.pk,
            "cluster_id": profile.pk,
            "recipe": RECIPE,
            "title": "bench twelve steps",
            "values": {**WATER, **SMALL_RUN, **CELL},
            "resources": RESOURCES,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    run = created.json()
    bench.remote_dirs[member.pk] += [run["project_dir"], run["scratch_dir"]]
    upload(client, run["upload_job_id"])
    step_ids = [step["id"] for step in run["steps"]]
    assert len(step_ids) == PIPELINE_STEPS
    settled(step_ids[:1], JobState.READY, timeout_s=180, what="the run's inputs on the cluster", log=log.path)

    singles = []  # the first template of the run, 12 times: every single job can start from the inputs
    template_id = Template.objects.get(slug="npt-equilibration").pk
    for n in range(PIPELINE_STEPS):
        response = client.post(
            "/api/v1/jobs",
            {
                "template_id": template_id,
                "cluster_id": profile.pk,
                "recipe": RECIPE,
                "title": f"bench single {n}",
                "values": {**WATER, **SMALL_RUN, **CELL, "output_name": f"single{n}"},
                "resources": RESOURCES,
            },
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
        job = response.json()
        singles.append(job["id"])
        bench.remote_dirs[member.pk] += [job["project_dir"], job["scratch_dir"]]
        upload(client, job["id"])
    return {"run_id": run["id"], "step_ids": step_ids, "single_ids": singles}


def submission(client: Client, log: CommandLog, urls: list[str], job_ids: list[int]) -> dict[str, Any]:
    """POST every submit url; seconds until every job has its SLURM id and until the worker is idle, and the
    execs the worker ran meanwhile."""
    log.mark()
    started = time.perf_counter()
    for url in urls:
        response = client.post(url)
        assert response.status_code == 202, response.content
    wait_until(lambda: all_queued(job_ids), timeout_s=300, what="every SLURM id", every_s=0.01)
    queued_s = time.perf_counter() - started
    wait_until(worker_idle, timeout_s=120, what="the submission to end", every_s=0.01)
    return {"s": time.perf_counter() - started, "queued_s": queued_s, "execs": log.execs()}


def measure_submit(client: Client, log: CommandLog, made: dict[str, Any]) -> dict[str, Any]:
    settled(made["single_ids"], JobState.READY, timeout_s=300, what="the single jobs READY", log=log.path)
    wait_until(worker_idle, timeout_s=120, what="the worker to be idle", every_s=0.1)
    pipeline = submission(client, log, [f"/api/v1/pipelines/{made['run_id']}/submit"], made["step_ids"])
    singles_urls = [f"/api/v1/jobs/{job_id}/submit" for job_id in made["single_ids"]]
    singles = submission(client, log, singles_urls, made["single_ids"])
    return {
        "pipeline_s": pipeline["s"],
        "pipeline_queued_s": pipeline["queued_s"],
        "singles_s": singles["s"],
        "singles_queued_s": singles["queued_s"],
        "pipeline_execs": pipeline["execs"],
        "singles_execs": singles["execs"],
    }


# ------------------------------------------------------------------ 2: sync, 50 runs x 6 steps vs 300 singles


def bench_sync(bench: Bench) -> dict[str, Any]:
    profile = bench.profile
    assert profile is not None
    version = TemplateVersion.objects.filter(template__slug="production-restart").order_by("-number").first()
    protocol = Protocol.objects.get(slug=PROTOCOL_SLUG)
    submitted_at = timezone.now() - timedelta(hours=1)
    rows: list[Job] = []
    runs: list[Pipeline] = []
    per_member = SYNC_RUNS // len(bench.members)
    for member in bench.members:
        client = bench.sessions[member.pk].slurm()
        script = bench.hold_script(member)
        for r in range(per_member):
            folder = f"bench-run-{r}"
            runs.append(
                Pipeline(
                    owner=member,
                    profile=profile,
                    protocol=protocol,
                    title=f"bench sync run {r}",
                    recipe_name=RECIPE,
                    project_dir=f"/home/{member.username}/namd_projects/{folder}",
                    scratch_dir=f"/scratch/{member.username}/{folder}",
                )
            )
            for position in range(1, SYNC_STEPS + 1):
                rows.append(
                    Job(
                        owner=member,
                        profile=profile,
                        template_version=version,
                        title=f"bench sync {r}.{position}",
                        recipe_name=RECIPE,
                        project_dir=f"/home/{member.username}/namd_projects/{folder}",
                        scratch_dir=f"/scratch/{member.username}/{folder}",
                        state=JobState.PENDING,
                        slurm_job_id=client.submit(script, JOB_NAME, extra_args=["--hold"]),
                        slurm_state="PENDING",
                        submitted_at=submitted_at,
                    )
                )
    Pipeline.objects.bulk_create(runs)
    Job.objects.bulk_create(rows)
    total = len(rows)
    job_ids = [job.pk for job in rows]
    links = [(job.pk, runs[n // SYNC_STEPS].pk, n % SYNC_STEPS + 1) for n, job in enumerate(rows)]

    def as_pipelines(on: bool) -> None:
        if not on:
            Job.objects.filter(pk__in=job_ids).update(pipeline=None, position=None)
            return
        by_run: dict[tuple[int, int], list[int]] = {}
        for job_id, run_id, position in links:
            by_run.setdefault((run_id, position), []).append(job_id)
        for (run_id, position), ids in by_run.items():
            Job.objects.filter(pk__in=ids).update(pipeline_id=run_id, position=position)

    def cycle() -> None:
        seen = 0
        for member in bench.members:
            report = sync_member_jobs(owner_id=member.pk, profile_id=profile.pk)
            assert not report.coalesced, "another sync of the bench's jobs ran meanwhile"
            seen += report.jobs
        assert seen == total, f"the cycle saw {seen} jobs, not {total}"

    cycle()  # warm: the first cycle writes SLURM's reason (JobHeldUser) on every row
    singles_s, pipelines_s = [], []
    try:
        for _ in range(CYCLE_ROUNDS):  # alternate, so that noise hurts both alike
            singles_s.append(timed(cycle))
            as_pipelines(True)
            pipelines_s.append(timed(cycle))
            as_pipelines(False)
    finally:
        Job.objects.filter(pk__in=job_ids).delete()
        Pipeline.objects.filter(pk__in=[run.pk for run in runs]).delete()
        bench.cancel_all()
    return {"jobs": total, "singles_s": singles_s, "pipelines_s": pipelines_s}


# ------------------------------------------------------------------ 3 and 4: a 200-point sweep, its page


def make_sweep(bench: Bench, client: Client, log: CommandLog, points: int) -> tuple[int, float]:
    """A grid of `points` points (temperatures x seeds) made, its inputs uploaded, submitted: seconds until
    every point has its SLURM id, from the create request on."""
    profile, member = bench.profile, bench.members[1]
    assert profile is not None
    seeds = 10
    temperatures = [round(290.0 + 0.5 * n, 1) for n in range(points // seeds)]
    started = time.perf_counter()
    created = client.post(
        "/api/v1/sweeps",
        {
            "template_id": Template.objects.get(slug="npt-equilibration").pk,
            "cluster_id": profile.pk,
            "recipe": RECIPE,
            "title": f"bench sweep {points}",
            "mode": "grid",
            "axes": [
                {"name": "temperature", "values": temperatures},
                {"name": "seed", "values": list(range(1, seeds + 1))},
            ],
            "values": {**WATER, **SMALL_RUN, **CELL},
            "resources": RESOURCES,
            "submit": True,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    sweep = created.json()
    assert sweep["points"] == points, sweep["points"]
    job_ids = [row["job_id"] for row in sweep["rows"]]
    folders = Job.objects.filter(pk__in=job_ids).values_list("project_dir", "scratch_dir")
    bench.remote_dirs[member.pk] += [folder for pair in folders for folder in pair]
    upload(client, sweep["inputs_job_id"])
    wait_until(lambda: all_queued(job_ids), timeout_s=1200, what=f"the {points} points' SLURM ids", every_s=0.1)
    elapsed = time.perf_counter() - started
    wait_until(worker_idle, timeout_s=300, what="the sweep's submissions to end", every_s=0.1)
    return sweep["id"], elapsed


def give_logs(sweep_ids: list[int]) -> None:
    """Every point's progress as the sync leaves a run that logged (NAMD's log of the NPT water box, recorded,
    tests/fixtures): the rows read what a finished sweep's would, not empty logs."""
    log = LogProgress()
    log.feed((FIXTURES / "logs" / "namd2_npt_pme.log").read_bytes())
    job_ids = list(SweepPoint.objects.filter(sweep_id__in=sweep_ids).values_list("job_id", flat=True))
    JobProgress.objects.filter(job_id__in=job_ids).delete()
    JobProgress.objects.bulk_create(
        JobProgress(job_id=job_id, log_state=log.to_state()).keep_figures() for job_id in job_ids
    )


class QueryCount:
    """Counts the SQL statements run through the connection (an execute wrapper: the request's own signals reset
    the debug query log)."""

    def __init__(self) -> None:
        self.queries = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries += 1
        return execute(sql, params, many, context)


def measure_pages(browser: Client, api: Client, sweeps: dict[int, int]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for points, sweep_id in sweeps.items():
        for kind, client, url in (
            ("page", browser, reverse("frontend:sweep_detail", args=[sweep_id])),
            ("api", api, f"/api/v1/sweeps/{sweep_id}"),
        ):

            def request(client: Client = client, url: str = url) -> None:
                response = client.get(url)
                assert response.status_code == 200, response.content[:500]

            counted = QueryCount()
            with connection.execute_wrapper(counted):
                request()
            results[kind, points] = (summarize(time_calls(request, repeat=PAGE_REPEAT, warmup=3)), counted.queries)
    return results


# ------------------------------------------------------------------ main


def main() -> None:
    logging.getLogger("django.request").setLevel(logging.ERROR)
    for name in ("clusters.ssh", "axes"):
        logging.getLogger(name).setLevel(logging.WARNING)
    facts = dict(line.split("=", 1) for line in localcluster("env").splitlines() if "=" in line)
    bench = Bench(facts)
    with tempfile.TemporaryDirectory(prefix="np-bench-pipelines-") as tmp:
        queue = f"bench-pipelines-{uuid.uuid4().hex[:12]}"
        file_store = Path(tmp) / "file-store"
        file_store.mkdir()
        settings.FILE_STORE = file_store
        celery_app.conf.task_default_queue = queue
        try:
            bench.set_up()
            api = Client(SERVER_NAME="localhost")
            api.force_login(bench.members[0])
            worker = start_worker(queue, file_store)
            log = CommandLog(file_store.parent / "worker.log", bench.profile.pk)
            try:
                made = bench_submit(bench, api, log)
                submit = measure_submit(api, log, made)
                bench.cancel_all()
                Pipeline.objects.filter(pk=made["run_id"]).delete()  # not active rows in the sync's cycle
                Job.objects.filter(pk__in=made["single_ids"]).delete()
                sync = bench_sync(bench)
                sweeper = Client(SERVER_NAME="localhost")
                sweeper.force_login(bench.members[1])
                small_id, small_s = make_sweep(bench, sweeper, log, SMALL_SWEEP)
                large_id, sweep_s = make_sweep(bench, sweeper, log, SWEEP_POINTS)
                bench.cancel_all()
                give_logs([small_id, large_id])
                pages = measure_pages(sweeper, sweeper, {SMALL_SWEEP: small_id, SWEEP_POINTS: large_id})
            finally:
                stop_worker(worker, queue)
        finally:
            bench.tear_down()
            Protocol.objects.filter(slug=PROTOCOL_SLUG).delete()
            TaskOrder.objects.filter(created_at__gte=BENCH_STARTED, task_name__startswith="jobs.").delete()

    pipeline_queueing = sum(1 for argv in submit["pipeline_execs"] if queues_in_slurm(argv))
    singles_queueing = sum(1 for argv in submit["singles_execs"] if queues_in_slurm(argv))
    pipeline_all, singles_all = len(submit["pipeline_execs"]), len(submit["singles_execs"])
    sync_singles_ms = statistics.median(sync["singles_s"]) * 1000
    sync_pipelines_ms = statistics.median(sync["pipelines_s"]) * 1000
    page = {key: row["median_ms"] for key, (row, _queries) in pages.items()}
    queries = {key: count for key, (_row, count) in pages.items()}
    rows = {
        f"submit: pipeline, {PIPELINE_STEPS} steps": summarize([submit["pipeline_s"]]),
        f"submit: {PIPELINE_STEPS} single jobs": summarize([submit["singles_s"]]),
        f"sync: {SYNC_RUNS} runs x {SYNC_STEPS} steps": summarize(sync["pipelines_s"]),
        f"sync: {sync['jobs']} single jobs": summarize(sync["singles_s"]),
        f"sweep: {SMALL_SWEEP} points to queued": summarize([small_s]),
        f"sweep: {SWEEP_POINTS} points to queued": summarize([sweep_s]),
    }
    for (kind, points), (row, _queries) in pages.items():
        rows[f"sweep {kind}, {points} points"] = row
    print("submit: end to end (POST .../submit to the worker idle), one Celery worker (--pool solo)")
    print(
        f"  remote execs: pipeline {pipeline_all} ({pipeline_queueing} queueing), "
        f"{PIPELINE_STEPS} singles {singles_all} ({singles_queueing} queueing); "
        f"every step's SLURM id after {submit['pipeline_queued_s']:.2f} s vs {submit['singles_queued_s']:.2f} s"
    )
    print(f"  pipeline execs: {Counter(argv[0] for argv in submit['pipeline_execs'] if argv)}")
    print(f"sync: {CYCLE_ROUNDS} cycles each, alternating, over the same {sync['jobs']} held SLURM jobs")
    print(f"sweep pages: {PAGE_REPEAT} requests each; the page shows {POINTS_PER_PAGE} rows, the API every row")
    print(f"  SQL queries: {queries}")
    figures = {
        "bench": "pipelines",
        "pipeline_remote_commands": pipeline_queueing,
        "pipeline_ssh_execs": pipeline_all,
        "singles_remote_commands": singles_queueing,
        "singles_ssh_execs": singles_all,
        "pipeline_submit_s": round(submit["pipeline_s"], 3),
        "singles_submit_s": round(submit["singles_s"], 3),
        "pipeline_submit_vs_singles": round(submit["pipeline_s"] / submit["singles_s"], 3),
        "sync_pipelines_ms": round(sync_pipelines_ms, 3),
        "sync_singles_ms": round(sync_singles_ms, 3),
        "sync_pipelines_vs_singles": round(sync_pipelines_ms / sync_singles_ms, 3),
        "sweep_10_s": round(small_s, 3),
        "sweep_200_s": round(sweep_s, 3),
        "sweep_page_10_ms": round(page["page", SMALL_SWEEP], 3),
        "sweep_page_200_ms": round(page["page", SWEEP_POINTS], 3),
        "sweep_page_200_vs_10": round(page["page", SWEEP_POINTS] / page["page", SMALL_SWEEP], 3),
        "sweep_page_queries_10": queries["page", SMALL_SWEEP],
        "sweep_page_queries_200": queries["page", SWEEP_POINTS],
        "sweep_api_200_vs_10": round(page["api", SWEEP_POINTS] / page["api", SMALL_SWEEP], 3),
    }
    print_report("Pipelines and sweeps on the local cluster (loopback) and the dev database", rows, figures)


if __name__ == "__main__":
    main()
