"""The bench's own world on the local cluster: five members with keys, a temporary profile, held-job scripts,
a Celery worker on a queue of its own, and the cleanup that removes all of it (benchmarks share it).

Needs Django set up by the importing benchmark; runs as root against `scripts/localcluster`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accounts.models import User
from clusters.demo import LOCAL_PARTITIONS, LOCAL_RECIPES
from clusters.gateway import MemberSession, connection_pool, redis_client
from clusters.models import ClusterCredential, ClusterProfile, LaunchRecipe, Partition
from clusters.services import save_key_credential
from jobs.models import Job, Pipeline, Sweep
from templates_app.builtin import load_builtin_templates

PROJECT_DIR = Path(__file__).resolve().parents[1]
LOCALCLUSTER = PROJECT_DIR / "scripts" / "localcluster" / "localcluster"
MEMBERS = tuple(f"np_bench_{n}" for n in range(1, 6))
PROFILE_SLUG = "bench-local"
PROFILE_NAME = "Bench: local SLURM cluster (temporary)"
RECIPE = "CPU: namd2 under srun"
JOB_NAME = "np-bench-sync"
HOLD_DIR = "np-bench-sync"  # below each member's scratch root
HOLD_SCRIPT = b"#!/bin/bash\n#SBATCH --output=/dev/null\nsleep 1\n"


def localcluster(*args: str) -> str:
    return subprocess.run([str(LOCALCLUSTER), *args], capture_output=True, text=True, timeout=300, check=True).stdout


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def attempt(what: str, call: Callable[[], object]) -> None:
    """One cleanup step: a failure is reported and the next step still runs."""
    try:
        call()
    except Exception as exc:  # cleanup must go on
        print(f"cleanup: {what} failed: {exc!r}", file=sys.stderr)


class Bench:
    """The bench's users, profile and sessions, and what it must remove."""

    def __init__(self, facts: dict[str, str]) -> None:
        self.facts = facts
        self.host_key_line = " ".join(Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]).read_text().split()[:2])
        self.profile: ClusterProfile | None = None
        self.members: list[User] = []
        self.sessions: dict[int, MemberSession] = {}
        self.remote_dirs: dict[int, list[str]] = {}

    def key_path(self, username: str) -> Path:
        return Path(self.facts["LOCALCLUSTER_KEYS_DIR"]) / username

    def hold_script(self, member: User) -> str:
        return f"{self.sessions[member.pk].roots[1]}/{HOLD_DIR}/hold.sbatch"

    def set_up(self) -> None:
        for name in MEMBERS:
            localcluster("add-user", name)
        remove_portal_objects()  # what a killed earlier run may have left
        profile = ClusterProfile.objects.create(
            slug=PROFILE_SLUG,
            name=PROFILE_NAME,
            description="Made and removed by bench/sync.py.",
            login_host=self.facts["LOCALCLUSTER_HOST"],
            login_port=int(self.facts["LOCALCLUSTER_PORT"]),
            pinned_host_keys=self.host_key_line,
            allowed_accounts=["lab"],
        )
        self.profile = profile
        for partition in LOCAL_PARTITIONS:
            Partition.objects.create(profile=profile, **partition)
        for recipe in LOCAL_RECIPES:
            LaunchRecipe.objects.create(profile=profile, **recipe)
        for name in MEMBERS:
            member = User.objects.create_user(username=name, password=uuid.uuid4().hex)
            save_key_credential(
                user=member,
                profile=profile,
                remote_username=name,
                private_key=self.key_path(name).read_text(),
                passphrase=None,
            )
            self.members.append(member)
            credential = ClusterCredential.objects.select_related("profile").get(user=member, profile=profile)
            session = MemberSession(credential)
            self.sessions[member.pk] = session
            self.remote_dirs[member.pk] = [f"{session.roots[1]}/{HOLD_DIR}"]
            session.run(["scancel", f"--user={name}"], check=True)  # start from an empty queue
            session.run(["mkdir", "-p", "--", f"{session.roots[1]}/{HOLD_DIR}"], check=True)
            session.write_files(f"{session.roots[1]}/{HOLD_DIR}", {"hold.sbatch": HOLD_SCRIPT})
        load_builtin_templates()

    def cancel_all(self) -> None:
        for member in self.members:
            session = self.sessions[member.pk]
            attempt(
                f"scancel {member.username}",
                lambda s=session, m=member: s.run(["scancel", f"--user={m.username}"], check=True),
            )

    def tear_down(self) -> None:
        self.cancel_all()
        deadline = time.monotonic() + 20

        def drained(session: MemberSession) -> None:
            while time.monotonic() < deadline:
                argv = ["squeue", "--me", "--noheader", "--states=RUNNING,COMPLETING"]
                if not session.run(argv, check=True).stdout.strip():
                    return
                time.sleep(0.5)

        for member in self.members:  # let cancelled jobs leave their dirs before those go
            attempt(f"wait for {member.username}'s jobs to end", lambda m=member: drained(self.sessions[m.pk]))
        for member in self.members:
            session, dirs = self.sessions[member.pk], self.remote_dirs[member.pk]
            roots = session.roots
            safe = [d for d in dirs if any(d.startswith(root + "/") and ".." not in d for root in roots)]
            if safe:
                remove = ["rm", "-rf", "--", *safe]
                attempt(
                    f"rm the remote dirs of {member.username}",
                    lambda s=session, r=remove: s.run(r, check=True, timeout_s=120),
                )
        attempt("close the pooled connections", connection_pool().close_all)
        attempt("remove the portal objects", remove_portal_objects)


def remove_portal_objects() -> None:
    """The bench's sweeps, runs and jobs (owner and profile are PROTECT: those first), users and profile."""
    Sweep.objects.filter(owner__username__in=MEMBERS).delete()
    Pipeline.objects.filter(owner__username__in=MEMBERS).delete()
    Job.objects.filter(owner__username__in=MEMBERS).delete()
    Job.objects.filter(profile__slug=PROFILE_SLUG).delete()
    User.objects.filter(username__in=MEMBERS).delete()
    ClusterProfile.objects.filter(slug=PROFILE_SLUG).delete()


def start_worker(queue: str, file_store: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "portal",
        "worker",
        "--queues",
        queue,
        "--pool",
        "solo",
        "--hostname",
        f"{queue}@%h",
        "--loglevel",
        "INFO",
    ]
    env = {**os.environ, "PORTAL_FILE_STORE": str(file_store), "PORTAL_CELERY_TASK_QUEUE": queue}
    with (file_store.parent / "worker.log").open("wb") as log_file:
        return subprocess.Popen(command, cwd=PROJECT_DIR, stdout=log_file, stderr=subprocess.STDOUT, env=env)


def stop_worker(process: subprocess.Popen, queue: str) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    redis_client().delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


def wait_until(check: Callable[[], Any], *, timeout_s: float, what: str, every_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
