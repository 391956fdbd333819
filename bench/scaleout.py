"""Scale-out: a slow cluster delays only its own queue, and more worker containers submit faster.

On the compose stack (bench.compose_stack: the production docker-compose.yml built here, host networking),
one member and two cluster profiles: the local SLURM cluster through its own sshd (fast), and the same
cluster through a second sshd that starts every command DELAY_S late (bench.slow_sshd: a slow login node).
JOBS jobs of the built-in NPT template (a tiny water box, unpaced engine), a quarter in each group below,
are created over the API through the TLS proxy with their inputs, and wait READY (the slow sshd answers at
full speed until then, so the set-up takes minutes, not an hour). Then, with the delay on, each group clicked
at once (8 client threads):

1. fast alone: a quarter on the fast cluster, the slow one idle: time until every job has its SLURM id
   (reach) and until every job is finished with its results copied (settle);
2. fast with the slow one busy: a quarter on the slow cluster is clicked first (its backlog queued), then
   another quarter on the fast cluster; the same two times for the fast jobs, from their first click.
   `fast_cluster_delay_ratio` is (2)/(1), the larger of the reach and settle ratios: the baseline is
   measured in the same run;
3. one worker container vs three: the slow quarter of (2) was submitted by one worker container (time from
   its first click until every job had its SLURM id); once it settled, the stack is scaled to three worker containers
   (`--scale worker=3`) and the last quarter is submitted to the slow cluster. `three_workers_vs_one` is
   the ratio of the two submission times: a latency-bound cluster is what more workers help with.

Prints a table, then one JSON object as the last line. About 20 minutes (most of it the slow cluster's
50 submissions through one worker container; the build is cached after the first run). Leaves nothing
behind: the stack is brought down by name, the slow sshd stopped, the member's SLURM jobs and job folders
removed (the cluster user np_scale stays, as `localcluster add-user` leaves it).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.compose_stack import ComposeStack
from bench.member_client import MemberClient
from bench.private_stack import PROJECT_DIR
from bench.slow_sshd import SlowSshd

LOCALCLUSTER = PROJECT_DIR / "scripts" / "localcluster" / "localcluster"
FIXTURES = PROJECT_DIR / "tests" / "fixtures" / "namd"
MEMBER = "np_scale"
DELAY_S = 2.0
CLICK_THREADS = 8
POLL_S = 2.0  # only for knowing when a phase is over: the figures come from the jobs' own times


def say(text: str) -> None:
    print(f"[scaleout] {text}", flush=True)


@dataclass
class Timing:
    reach_s: float
    settle_s: float


class Bench:
    def __init__(self, stack: ComposeStack, client: MemberClient, profiles: dict[str, int], template_id: int) -> None:
        self.stack = stack
        self.client = client
        self.profiles = profiles
        self.template_id = template_id

    def deadline(self, seconds: float = 120) -> float:
        return time.monotonic() + seconds

    def create(self, cluster: str, count: int, label: str) -> list[int]:
        values = {
            "structure": "water.psf",
            "coordinates": "water.pdb",
            "parameters": "par_water.prm",
            "output_energies": 50,
            "restart_every": 100,
            "dcd_every": 100,
            "minimize_steps": 10,
            "cell_x": 30.0,
            "cell_y": 30.0,
            "cell_z": 30.0,
            "run_steps": 100,
        }
        inputs = {name: (FIXTURES / name).read_bytes() for name in ("water.psf", "water.pdb", "par_water.prm")}

        def one(n: int) -> int:
            payload = {
                "template_id": self.template_id,
                "cluster_id": self.profiles[cluster],
                "recipe": "CPU: namd2 under srun",
                "title": f"scaleout {label} {n}",
                "values": values,
                "resources": {"partition": "debug", "walltime_s": 600, "memory_mb": 128},
            }
            created = self.client.post_json("/api/v1/jobs", payload, deadline=self.deadline())
            if created.status != 201:
                raise RuntimeError(f"creating a job: HTTP {created.status} {created.body}")
            job_id = created.body["id"]
            for name, content in inputs.items():
                path = f"/api/v1/jobs/{job_id}/inputs"
                sent = self.client.post_file(path, "file", name, content, deadline=self.deadline())
                if sent.status != 202:
                    raise RuntimeError(f"uploading {name}: HTTP {sent.status} {sent.body}")
            return job_id

        with ThreadPoolExecutor(CLICK_THREADS) as pool:
            return list(pool.map(one, range(count)))

    def jobs(self) -> dict[int, dict[str, Any]]:
        answer = self.client.get("/api/v1/jobs?page_size=200", deadline=self.deadline())
        if answer.status != 200:
            raise RuntimeError(f"listing jobs: HTTP {answer.status}")
        return {job["id"]: job for job in answer.body["items"]}

    def wait(self, ids: list[int], done: Any, *, timeout_s: float, what: str) -> float:
        started = time.monotonic()
        while True:
            rows = self.jobs()
            if all(done(rows[i]) for i in ids):
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                states = sorted({rows[i]["state"] for i in ids})
                raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what} (states {states})")
            time.sleep(POLL_S)

    def click(self, ids: list[int]) -> None:
        def one(job_id: int) -> None:
            answer = self.client.post_json(f"/api/v1/jobs/{job_id}/submit", None, deadline=self.deadline())
            if answer.status != 202:
                raise RuntimeError(f"submitting {job_id}: HTTP {answer.status} {answer.body}")

        with ThreadPoolExecutor(CLICK_THREADS) as pool:
            list(pool.map(one, ids))

    def run_groups(self, groups: list[list[int]], *, timeout_s: float = 1200) -> list[Timing]:
        """Click the groups one after the other; per group, from its first click (wall clock, as the portal's):

        reach, until the last job's SLURM id was recorded (its `submitted_at`); settle, until the last job
        was finished with its results copied (`finished_at`). Read from the jobs themselves, not from when a
        poll saw them, so the poll's period does not blur the figures. One poller follows every group.
        """
        starts: list[float] = []
        for group in groups:
            starts.append(time.time())
            self.click(group)
        ids = [job_id for group in groups for job_id in group]
        self.wait(ids, lambda job: job["finished_at"] is not None, timeout_s=timeout_s, what="settling")
        rows = self.jobs()
        timings = []
        for start, group in zip(starts, groups, strict=True):
            submitted = max(stamp(rows[i]["submitted_at"]) for i in group)
            finished = max(stamp(rows[i]["finished_at"]) for i in group)
            timings.append(Timing(reach_s=submitted - start, settle_s=finished - start))
        return timings


def stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs in all, a quarter per group")
    parser.add_argument("--delay", type=float, default=DELAY_S, help="seconds the slow cluster answers late")
    parser.add_argument("--keep", action="store_true", help="leave the stack up")
    args = parser.parse_args()
    quarter = args.jobs // 4

    stack = ComposeStack("npscaleout")
    say("building and starting the compose stack (one worker container)")
    stack.prepare()
    stack.build()
    try:
        with SlowSshd(0) as slow:  # set up at full speed; slow only while measuring
            stack.up(scale={"worker": 1})
            stack.wait_healthy("db", "redis", "web", "worker")
            subprocess.run([str(LOCALCLUSTER), "add-user", MEMBER], check=True, capture_output=True, timeout=120)
            token = stack.member(MEMBER)
            profiles = {
                "fast": stack.register_local_cluster(MEMBER),
                "slow": stack.register_local_cluster(
                    MEMBER, slug="slowcluster", name=f"Slow login node ({args.delay:g} s late)", port=slow.port
                ),
            }
            stack.manage("load_builtin_templates")
            client = MemberClient(stack.base_url, token, rng=random.Random(5), ssl_context=stack.ssl_context())
            templates = client.get("/api/v1/templates", deadline=time.monotonic() + 60).body
            template_id = next(t["id"] for t in templates if t["slug"] == "npt-equilibration")
            bench = Bench(stack, client, profiles, template_id)
            figures = measure(bench, stack, quarter, slow=slow, delay_s=args.delay)
    finally:
        if not args.keep:
            stack.down()
            clean_cluster()
    table(figures)
    print(json.dumps(figures))


def measure(bench: Bench, stack: ComposeStack, quarter: int, *, slow: SlowSshd, delay_s: float) -> dict[str, Any]:
    say(f"creating {4 * quarter} jobs with their inputs")
    began = time.monotonic()
    fast_alone = bench.create("fast", quarter, "fast alone")
    fast_busy = bench.create("fast", quarter, "fast with slow")
    slow_one = bench.create("slow", quarter, "slow one worker")
    slow_three = bench.create("slow", quarter, "slow three workers")
    everything = fast_alone + fast_busy + slow_one + slow_three
    bench.wait(everything, lambda job: job["state"] == "READY", timeout_s=900, what="READY")
    say(f"{len(everything)} jobs READY after {time.monotonic() - began:.0f} s")
    slow.set_delay(delay_s)

    (alone,) = bench.run_groups([fast_alone])
    say(f"fast alone: reach {alone.reach_s:.1f} s, settle {alone.settle_s:.1f} s")
    slow1, busy = bench.run_groups([slow_one, fast_busy])  # the slow cluster's backlog is queued first
    say(f"fast with the slow cluster busy: reach {busy.reach_s:.1f} s, settle {busy.settle_s:.1f} s")
    say(f"slow, one worker container: reach {slow1.reach_s:.1f} s, settle {slow1.settle_s:.1f} s")

    stack.up(scale={"worker": 3})
    stack.wait_healthy("worker")
    say(f"scaled to {len(stack.containers('worker'))} worker containers")
    (slow3,) = bench.run_groups([slow_three])
    say(f"slow, three worker containers: reach {slow3.reach_s:.1f} s, settle {slow3.settle_s:.1f} s")

    reach_ratio = busy.reach_s / alone.reach_s
    settle_ratio = busy.settle_s / alone.settle_s
    return {
        "jobs": len(everything),
        "slow_delay_s": delay_s,
        "fast_alone_reach_s": round(alone.reach_s, 1),
        "fast_alone_settle_s": round(alone.settle_s, 1),
        "fast_with_slow_reach_s": round(busy.reach_s, 1),
        "fast_with_slow_settle_s": round(busy.settle_s, 1),
        "fast_reach_ratio": round(reach_ratio, 3),
        "fast_settle_ratio": round(settle_ratio, 3),
        "fast_cluster_delay_ratio": round(max(reach_ratio, settle_ratio), 3),
        "slow_submit_one_worker_s": round(slow1.reach_s, 1),
        "slow_submit_three_workers_s": round(slow3.reach_s, 1),
        "three_workers_vs_one": round(slow3.reach_s / slow1.reach_s, 3),
    }


def table(figures: dict[str, Any]) -> None:
    width = max(len(name) for name in figures)
    print()
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value}")
    print()


def clean_cluster() -> None:
    """The member's SLURM jobs cancelled and its job folders removed on the cluster."""
    subprocess.run(["scancel", "--user", MEMBER], check=False, capture_output=True, timeout=60)
    for root in (f"/home/{MEMBER}/namd_projects", f"/scratch/{MEMBER}"):
        subprocess.run(["find", root, "-mindepth", "1", "-delete"], check=False, capture_output=True, timeout=300)


if __name__ == "__main__":
    main()
