"""Nothing lost or doubled when processes die: jobs taken from READY to finished while the portal's processes
and the cluster's daemons are killed at random moments.

On the local stack: the bench runs its own PostgreSQL, Redis, web, worker and beat (`bench.private_stack`,
a temporary PORTAL_VAR on free ports; the shared dev services are never touched) against the local SLURM
cluster over its sshd. Four members, each with an API token, create jobs of the built-in NPT template
(water box; the stand-in NAMD engine runs each for about RUN_S seconds) and upload their inputs over HTTP
until every job is READY. Then, from the first click on:

- the members click submit on their jobs over time, over HTTP, like a client: a request that meets a
  server in trouble (no connection, 5xx, 429) is tried again with backoff; after an accepted click a
  member sometimes clicks again (the impatient double click);
- a fault thread (seeded RNG, seed printed) does the schedule in a random order at random moments, one
  fault at a time: SIGKILL of the worker's process group (main and pool children) five times, restarted at
  once; SIGKILL of Redis and of PostgreSQL (postmaster and backends), each brought back after 20 s;
  `localcluster kill sshd` (the daemon with every session and the commands they run) for 30 s;
  `localcluster stop-one slurmctld` for 30 s;
- a supervisor restarts web, worker or beat if one dies of something else (as docker-compose's
  `restart: unless-stopped` does), and says so.

After the last fault the bench waits until every job is settled, at most SETTLE_AFTER_LAST_FAULT_S, then
counts:

- lost: no SLURM job carries the job's tag (it never reached SLURM), or SLURM ended it and the portal
  never finished it (no `finished_at`: results never copied back);
- doubled: more than one SLURM job carries the job's tag (`localcluster sacct` as each member over the run
  window: JobName `np-<uuid12>-...`, or the `np:<uuid>` comment for a job still under sacct's placeholder
  name);
- stuck: not settled (terminal with `finished_at`, or never sent: back in READY) 3 minutes after the last
  fault; a job in SUBMITTING forever is both lost and stuck, one that fell back to READY only lost;
- concurrent finishes: jobs whose results copies overlapped in time, from the RemoteCommandRecord rows of
  the copy argv (`rsync -a -- scratch/ project/`, start and duration of its exec) in the bench's database.
  A copy whose worker was SIGKILLed under it leaves no row, but its rsync dies with its SSH session then;
- recovery_s: from the end of the last fault (its service back) to the last job settling.

Bounded: about 11 minutes for the full run (`--quick`: fewer jobs and short faults, about 4 minutes).
Runs as root. It disturbs the shared cluster for a minute (sshd and slurmctld are down 30 s each: other
agents' cluster tests fail meanwhile; `--no-cluster-faults` leaves them alone); it always brings them back
(`localcluster start`) and removes what it made: its SLURM jobs, its members' job folders on the cluster,
the private services and their data (`--keep` keeps the data and logs). The cluster users np_faults_1..4
stay, as `localcluster add-user` leaves them. Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import django

from bench.member_client import GaveUp, MemberClient
from bench.private_stack import PROJECT_DIR, PrivateStack

LOCALCLUSTER = PROJECT_DIR / "scripts" / "localcluster" / "localcluster"
FIXTURES = PROJECT_DIR / "tests" / "fixtures" / "namd"
WATER_FILES = ("water.psf", "water.pdb", "par_water.prm")
MEMBERS = tuple(f"np_faults_{n}" for n in range(1, 5))
TEMPLATE_SLUG = "npt-equilibration"
RECIPE = "CPU: namd2 under srun"
STEPS_PER_SECOND = 500  # the stand-in engine's default pace (NAMD_STANDIN_STEPS_PER_SECOND)
JOB_OVERHEAD_S = 3.0  # per job: SLURM's start, the engine's start, minimization
FIRST_FAULT_S = 15.0
WORKER_RESTART_S = 14.0  # measured: killing and starting the worker again (its start waits for a ping)
SETTLE_AFTER_LAST_FAULT_S = 180.0
DOUBLE_CLICK_P = 0.3
PROGRESS_EVERY_S = 20.0
# Set when the bench ends, however it ends: no fault starts after it, an outage under way ends at once.
HALT = threading.Event()
SLURM_ACTIVE = ("PENDING", "RUNNING", "REQUEUED", "RESIZING", "SUSPENDED", "COMPLETING", "CONFIGURING")


@dataclass(frozen=True)
class Plan:
    jobs: int
    run_s: int  # the stand-in's run of each job
    worker_kills: int
    redis_down_s: float
    postgres_down_s: float
    sshd_down_s: float
    slurmctld_down_s: float
    cluster_faults: bool

    def faults(self) -> list[tuple[str, float]]:
        """(kind, expected seconds it takes) of each fault."""
        planned = [("worker", WORKER_RESTART_S)] * self.worker_kills
        planned += [("redis", self.redis_down_s), ("postgres", self.postgres_down_s)]
        if self.cluster_faults:
            planned += [("sshd", self.sshd_down_s), ("slurmctld", self.slurmctld_down_s)]
        return planned


FULL = Plan(40, 20, 5, 20.0, 20.0, 30.0, 30.0, cluster_faults=True)
QUICK = Plan(8, 10, 2, 5.0, 5.0, 5.0, 5.0, cluster_faults=True)


@dataclass
class Fault:
    kind: str
    at_s: float  # planned, from the first click
    expected_s: float
    started_s: float | None = None
    ended_s: float | None = None
    ended_wall: float | None = None
    note: str = ""


@dataclass
class Clicks:
    accepted: dict[int, float] = field(default_factory=dict)  # job id -> seconds from the first click
    refused: dict[int, str] = field(default_factory=dict)  # job id -> the code of the answer
    clicks: int = 0
    double_clicks: int = 0
    gave_up: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def say(text: str) -> None:
    print(text, flush=True)


def localcluster(*args: str, timeout_s: float = 300.0) -> str:
    return subprocess.run(
        [str(LOCALCLUSTER), *args], capture_output=True, text=True, timeout=timeout_s, check=True
    ).stdout


def cluster_up(component: str) -> bool:
    status = subprocess.run([str(LOCALCLUSTER), "status"], capture_output=True, text=True, timeout=60, check=False)
    return any(line.split()[:2] == [component, "up"] for line in status.stdout.splitlines())


# ------------------------------------------------------------------ the schedule


def schedule(plan: Plan, rng: random.Random, window_s: float) -> list[Fault]:
    """The faults in a random order at random moments in [FIRST_FAULT_S, window_s], never two at once."""
    kinds = plan.faults()
    rng.shuffle(kinds)
    busy = sum(expected for _kind, expected in kinds)
    free = max(window_s - FIRST_FAULT_S - busy, len(kinds) * 2.0)
    gaps = sorted(rng.uniform(0, free) for _ in kinds)
    faults, used = [], 0.0
    for (kind, expected), gap in zip(kinds, gaps, strict=True):
        faults.append(Fault(kind=kind, at_s=FIRST_FAULT_S + gap + used, expected_s=expected))
        used += expected
    return faults


def run_faults(faults: list[Fault], plan: Plan, stack: PrivateStack, started: float) -> None:
    """Each fault at its moment; a cluster fault's daemon always comes back, whatever happens."""
    for fault in faults:
        if HALT.wait(max(0.0, started + fault.at_s - time.monotonic())):
            return
        fault.started_s = time.monotonic() - started
        say(f"[{fault.started_s:6.1f} s] fault: {fault.kind}")
        try:
            fault.note = inflict(fault.kind, plan, stack)
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            fault.note = f"FAILED: {exc}"
        fault.ended_s, fault.ended_wall = time.monotonic() - started, time.time()
        say(f"[{fault.ended_s:6.1f} s] fault over: {fault.kind} {fault.note}")


def inflict(kind: str, plan: Plan, stack: PrivateStack) -> str:
    if kind == "worker":
        return f"{stack.kill_worker()} processes killed, restarted"
    if kind == "redis":
        stack.kill_redis()
        HALT.wait(plan.redis_down_s)
        stack.bring_back("redis")
        return f"down {plan.redis_down_s:.0f} s"
    if kind == "postgres":
        killed = stack.kill_postgres()
        HALT.wait(plan.postgres_down_s)
        stack.bring_back("postgres")
        return f"{killed} processes killed, down {plan.postgres_down_s:.0f} s"
    down_s = plan.sshd_down_s if kind == "sshd" else plan.slurmctld_down_s
    try:
        localcluster("kill" if kind == "sshd" else "stop-one", kind)
        back_early = outage(kind, down_s)
    finally:
        localcluster("start")
    return f"down {down_s:.0f} s" + (f" (started by someone else after {back_early:.0f} s)" if back_early else "")


def outage(component: str, down_s: float) -> float | None:
    """Wait out a cluster daemon's outage; when another `localcluster start` brought it back, after how long."""
    began = time.monotonic()
    while time.monotonic() - began < down_s and not HALT.wait(1.0):
        if cluster_up(component):
            return time.monotonic() - began
    return None


# ------------------------------------------------------------------ members


def create_jobs(client: MemberClient, member: str, count: int, world: Any, plan: Plan, deadline: float) -> list[int]:
    """`count` jobs with their three inputs uploaded, over the API; they turn READY once the inputs are copied."""
    run_steps = plan.run_s * STEPS_PER_SECOND
    values = {
        "structure": "water.psf",
        "coordinates": "water.pdb",
        "parameters": "par_water.prm",
        "output_energies": 500,
        "restart_every": run_steps,
        "dcd_every": run_steps,
        "minimize_steps": 50,
        "cell_x": 30.0,
        "cell_y": 30.0,
        "cell_z": 30.0,
        "run_steps": run_steps,
    }
    job_ids = []
    for n in range(count):
        payload = {
            "template_id": world.template_id,
            "cluster_id": world.profile_id,
            "recipe": RECIPE,
            "title": f"faults {member} {n}",
            "values": values,
            "resources": {"partition": "debug", "walltime_s": 900, "memory_mb": 256},
        }
        created = client.post_json("/api/v1/jobs", payload, deadline=deadline)
        if created.status != 201:
            raise RuntimeError(f"creating a job for {member}: HTTP {created.status} {created.body}")
        job_id = created.body["id"]
        for name in WATER_FILES:
            sent = client.post_file(
                f"/api/v1/jobs/{job_id}/inputs", "file", name, (FIXTURES / name).read_bytes(), deadline=deadline
            )
            if sent.status != 202:
                raise RuntimeError(f"uploading {name} to job {job_id}: HTTP {sent.status} {sent.body}")
        job_ids.append(job_id)
    return job_ids


def click_submits(
    client: MemberClient, job_ids: list[int], clicks: Clicks, rng: random.Random, *, started: float, spread_s: float
) -> None:
    """Submit each job, spread over `spread_s`, until an answer that is not trouble; sometimes click twice."""
    deadline = started + spread_s + SETTLE_AFTER_LAST_FAULT_S * 2
    for job_id in job_ids:
        time.sleep(rng.uniform(0, 2 * spread_s / len(job_ids)))
        for again in (False, True):
            if again:
                if rng.random() >= DOUBLE_CLICK_P:
                    break
                time.sleep(rng.uniform(0.2, 3.0))
            try:
                answer = client.post_json(f"/api/v1/jobs/{job_id}/submit", None, deadline=deadline)
            except GaveUp:
                with clicks.lock:
                    clicks.gave_up += 1
                break
            with clicks.lock:
                clicks.clicks += 1
                clicks.double_clicks += again
                if answer.status == 202:
                    clicks.accepted.setdefault(job_id, time.monotonic() - started)
                elif job_id not in clicks.accepted:
                    code = (answer.body or {}).get("error", {}).get("code") if isinstance(answer.body, dict) else None
                    clicks.refused[job_id] = code or f"HTTP {answer.status}"


# ------------------------------------------------------------------ measuring


@dataclass(frozen=True)
class SlurmRecord:
    slurm_job_id: str
    state: str


def slurm_jobs_by_tag(rows: list[Any], since_wall: float) -> dict[int, list[SlurmRecord]]:
    """Each job's SLURM jobs over the run window, as its member sees them in sacct."""
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since_wall - 60))
    fields = "--format=JobID,JobName,Comment,State"
    by_tag: dict[int, list[SlurmRecord]] = {row.job_id: [] for row in rows}
    for member in sorted({row.owner for row in rows}):
        listed = localcluster("sacct", member, "-X", "-n", "-P", "-S", since, "-E", "now", fields)
        mine = [row for row in rows if row.owner == member]
        for line in listed.splitlines():
            slurm_job_id, name, comment, state = line.split("|", 3)
            for row in mine:
                tag = f"np-{row.uuid_hex[:12]}"
                if name == tag or name.startswith(tag + "-") or comment == f"np:{uuid_text(row.uuid_hex)}":
                    by_tag[row.job_id].append(SlurmRecord(slurm_job_id, state.split()[0]))
    return by_tag


def uuid_text(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def overlapping(intervals: list[tuple[datetime, datetime]]) -> bool:
    ordered = sorted(intervals)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ordered))


# ------------------------------------------------------------------ the run


def wait_for(read: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = read()
        if result:
            return result
        time.sleep(every_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, help=f"jobs in all (default {FULL.jobs}, --quick {QUICK.jobs})")
    parser.add_argument("--seed", type=int, help="the fault schedule's and the members' seed (default: random)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer jobs, 2 worker kills, 5 s outages")
    parser.add_argument(
        "--no-cluster-faults", action="store_true", help="leave the shared cluster's sshd and slurmctld alone"
    )
    parser.add_argument("--keep", action="store_true", help="keep the private services' data and logs")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    plan = Plan(
        jobs=args.jobs or plan.jobs,
        run_s=plan.run_s,
        worker_kills=plan.worker_kills,
        redis_down_s=plan.redis_down_s,
        postgres_down_s=plan.postgres_down_s,
        sshd_down_s=plan.sshd_down_s,
        slurmctld_down_s=plan.slurmctld_down_s,
        cluster_faults=not args.no_cluster_faults,
    )
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    say(f"seed {seed} (python -m bench.faults --seed {seed} repeats this schedule)")

    def stop_on_term(_signum: int, _frame: object) -> None:
        raise SystemExit("terminated")

    signal.signal(signal.SIGTERM, stop_on_term)
    stack = PrivateStack()
    figures: dict[str, Any] | None = None
    try:
        stack.services("start", "postgres", "redis")
        stack.use_in_this_process()
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        django.setup()
        for name in ("clusters", "jobs", "templates_app", "django", "axes", "celery"):
            logging.getLogger(name).setLevel(logging.WARNING)
        figures = run(plan, seed, stack)
    finally:
        tear_down(stack, keep=args.keep, cluster_faults=plan.cluster_faults)
    print(json.dumps(figures))


def run(plan: Plan, seed: int, stack: PrivateStack) -> dict[str, Any]:
    from bench import fault_portal  # only now: the settings are read at django.setup(), pointed at the private set

    rng = random.Random(seed)
    facts = dict(line.split("=", 1) for line in localcluster("env").splitlines() if "=" in line)
    for member in MEMBERS:
        localcluster("add-user", member)
    world = fault_portal.set_up(facts, MEMBERS, TEMPLATE_SLUG)
    stack.services("start", "worker", "beat", "web")
    say(f"private services in {stack.var}: web {stack.base_url}, worker, beat, PostgreSQL, Redis")

    clients = {m: MemberClient(stack.base_url, world.tokens[m], rng=random.Random(rng.random())) for m in MEMBERS}
    shares = {m: plan.jobs // len(MEMBERS) + (i < plan.jobs % len(MEMBERS)) for i, m in enumerate(MEMBERS)}
    job_ids: dict[str, list[int]] = {}
    setup_began = time.monotonic()
    setup_deadline = setup_began + 300

    def create(member: str) -> None:
        job_ids[member] = create_jobs(clients[member], member, shares[member], world, plan, setup_deadline)

    threads = [threading.Thread(target=create, args=(m,), name=f"create-{m}", daemon=True) for m in MEMBERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    all_ids = [job_id for member in MEMBERS for job_id in job_ids.get(member, [])]
    if len(all_ids) != plan.jobs:
        raise RuntimeError("not every member could create its jobs (see above)")

    def all_ready() -> bool:
        rows = fault_portal.job_rows(all_ids) or []
        return len(rows) == plan.jobs and all(row.state == "READY" for row in rows)

    try:
        wait_for(all_ready, timeout_s=300, what="every job's inputs to reach the cluster (READY)")
    except TimeoutError:
        print(stack.log("worker").read_text()[-3000:], file=sys.stderr)
        raise
    say(f"{plan.jobs} jobs READY ({len(MEMBERS)} members) after {time.monotonic() - setup_began:.0f} s; the run starts")

    slots = os.cpu_count() or 1  # the local cluster's node has one CPU per core here, one job on each
    work_s = math.ceil(plan.jobs / slots) * (plan.run_s + JOB_OVERHEAD_S)
    faults = schedule(plan, random.Random(rng.random()), window_s=0.8 * work_s)
    spread_s = 0.5 * work_s
    clicks = Clicks()
    started, started_wall = time.monotonic(), time.time()
    stack.supervise()
    fault_thread = threading.Thread(target=run_faults, args=(faults, plan, stack, started), name="faults", daemon=True)
    members = [
        threading.Thread(
            target=click_submits,
            args=(clients[m], job_ids[m], clicks, random.Random(rng.random())),
            kwargs={"started": started, "spread_s": spread_s},
            name=f"clicks-{m}",
            daemon=True,
        )
        for m in MEMBERS
    ]
    fault_thread.start()
    for thread in members:
        thread.start()

    def progress(until: Callable[[], bool], deadline: float) -> None:
        last = 0.0
        while not until() and time.monotonic() < deadline:
            time.sleep(1.0)
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                rows = fault_portal.job_rows(all_ids)
                states = dict(Counter(row.state for row in rows)) if rows else "(the database is down)"
                say(f"[{last - started:6.1f} s] accepted {len(clicks.accepted)}/{plan.jobs}; jobs: {states}")

    progress(lambda: not fault_thread.is_alive(), deadline=float("inf"))
    fault_thread.join()
    last_fault_end = max(fault.ended_s or 0.0 for fault in faults)
    last_fault_wall = max(fault.ended_wall or 0.0 for fault in faults)
    settle_deadline = started + last_fault_end + SETTLE_AFTER_LAST_FAULT_S

    def settled() -> bool:
        rows = fault_portal.job_rows(all_ids)
        members_done = not any(thread.is_alive() for thread in members)
        return bool(rows) and members_done and all(row.is_settled for row in rows)

    progress(settled, deadline=settle_deadline)
    for thread in members:
        thread.join(timeout=max(0.0, settle_deadline - time.monotonic()))
    rows = wait_for(lambda: fault_portal.job_rows(all_ids), timeout_s=60, what="the database")
    ended_s = time.monotonic() - started

    # sacct learns of jobs from slurmctld asynchronously (longer after a slurmctld restart): wait until
    # every SLURM id the portal holds is in it.
    known = {row.slurm_job_id for row in rows if row.slurm_job_id}

    def in_sacct() -> dict[int, list[SlurmRecord]] | None:
        found = slurm_jobs_by_tag(rows, started_wall)
        seen = {record.slurm_job_id for records in found.values() for record in records}
        return found if known <= seen else None

    try:
        slurm = wait_for(in_sacct, timeout_s=60, what="sacct to list every SLURM id the portal holds", every_s=3)
    except TimeoutError:
        slurm = slurm_jobs_by_tag(rows, started_wall)
    copies = wait_for(lambda: fault_portal.results_copies(rows), timeout_s=60, what="the database")

    never_in_slurm = [row for row in rows if not slurm[row.job_id]]
    never_finished = [
        row
        for row in rows
        if slurm[row.job_id]
        and not any(record.state in SLURM_ACTIVE for record in slurm[row.job_id])
        and row.finished_at is None
    ]
    doubled = [row for row in rows if len(slurm[row.job_id]) > 1]
    stuck = [row for row in rows if not row.is_settled]
    concurrent = [row for row in rows if overlapping(copies[row.job_id])]
    settle_times = [row.finished_at.timestamp() for row in rows if row.finished_at is not None]
    recovery_s = None
    if not stuck and settle_times:
        recovery_s = round(max(0.0, max(settle_times) - last_fault_wall), 1)

    say("")
    say(f"Faults (seed {seed}; t in seconds from the first submit click; run ended at t = {ended_s:.0f} s)")
    say(f"{'t':>8}  {'fault':<10}{'took s':>8}  note")
    for fault in faults:
        took = (fault.ended_s or 0.0) - (fault.started_s or 0.0)
        say(f"{fault.started_s or 0.0:>8.1f}  {fault.kind:<10}{took:>8.1f}  {fault.note}")
    restarts = ", ".join(f"{name} {count}" for name, count in stack.restarts.items())
    say(f"supervisor restarts (deaths no fault caused): {restarts}")
    say("")
    say(
        f"Jobs: {plan.jobs} of {len(MEMBERS)} members, ~{plan.run_s} s each of the stand-in engine, {slots} at a time; "
        f"submits spread over {spread_s:.0f} s"
    )
    say(
        f"clicks: {clicks.clicks} answered ({clicks.double_clicks} double clicks), {clicks.gave_up} given up; "
        f"client retries on trouble: {sum(client.retries for client in clients.values())}"
    )
    copies_per_job = Counter(len(copies[row.job_id]) for row in rows)
    table = [
        ("submit accepted (202)", len(clicks.accepted)),
        ("submit refused", f"{len(clicks.refused)} {dict(Counter(clicks.refused.values())) or ''}".strip()),
        ("portal states at the end", dict(Counter(row.state for row in rows))),
        ("reached SLURM", plan.jobs - len(never_in_slurm)),
        (
            "lost",
            f"{len(never_in_slurm) + len(never_finished)}  (never in SLURM {len(never_in_slurm)}, "
            f"ended in SLURM but never finished {len(never_finished)})",
        ),
        ("doubled", len(doubled)),
        ("stuck", len(stuck)),
        (
            "concurrent finishes",
            f"{len(concurrent)}  (results copies recorded per job: "
            + ", ".join(f"{n}x{count}" for n, count in sorted(copies_per_job.items()))
            + ")",
        ),
        ("recovery_s", f"{recovery_s}  (from the end of the last fault at t = {last_fault_end:.0f} s)"),
    ]
    for name, value in table:
        say(f"  {name:<26}{value}")
    problems = {row.job_id for row in [*never_in_slurm, *never_finished, *doubled, *stuck, *concurrent]}
    if problems:
        say("")
        say(f"{'job':>6}  {'member':<12}{'portal state':<14}{'finished':<10}{'SLURM jobs':<32}copies")
        for row in rows:
            if row.job_id in problems:
                ids = " ".join(f"{r.slurm_job_id}:{r.state}" for r in slurm[row.job_id]) or "-"
                finished = "yes" if row.finished_at else "no"
                say(f"{row.job_id:>6}  {row.owner:<12}{row.state:<14}{finished:<10}{ids:<32}{len(copies[row.job_id])}")
    return {
        "bench": "faults",
        "seed": seed,
        "jobs": plan.jobs,
        "lost": len(never_in_slurm) + len(never_finished),
        "doubled": len(doubled),
        "stuck": len(stuck),
        "concurrent_finishes": len(concurrent),
        "recovery_s": recovery_s,
    }


def tear_down(stack: PrivateStack, *, keep: bool, cluster_faults: bool) -> None:
    """The shared cluster as it was (its daemons up), none of the bench's SLURM jobs or folders, no private set."""
    HALT.set()
    steps: list[tuple[str, Callable[[], object]]] = []
    if cluster_faults:
        steps.append(("bring the cluster's daemons back (localcluster start)", lambda: localcluster("start")))
    for member in MEMBERS:
        steps.append((f"cancel {member}'s SLURM jobs", lambda m=member: scancel_all(m)))
    for member in MEMBERS:
        steps.append((f"remove {member}'s job folders", lambda m=member: remove_job_folders(m)))
    steps.append(("stop the private services", stack.stop))
    steps.append(("remove the private services' data", lambda: stack.remove(keep=keep, announce=say)))
    for what, step in steps:
        try:
            step()
        except Exception as exc:  # every step runs: the shared cluster must come back whatever failed before
            print(f"cleanup: {what} failed: {exc!r}", file=sys.stderr)


def scancel_all(member: str) -> None:
    if subprocess.run(["id", "-u", member], capture_output=True, check=False).returncode != 0:
        return
    subprocess.run(["scancel", f"--user={member}"], capture_output=True, timeout=60, check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # let them leave their folders before those go
        queue = subprocess.run(["squeue", "-h", f"--user={member}"], capture_output=True, text=True, check=True)
        if not queue.stdout.strip():
            return
        time.sleep(1.0)


def remove_job_folders(member: str) -> None:
    """Everything below the member's two roots: the cluster user is the bench's own (np_faults_*)."""
    for root in (Path("/home") / member / "namd_projects", Path("/scratch") / member):
        if root.is_dir():
            for entry in root.iterdir():
                subprocess.run(["rm", "-rf", "--", str(entry)], timeout=120, check=True)


if __name__ == "__main__":
    main()
