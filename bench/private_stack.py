"""A private copy of the portal's processes for a benchmark that kills them: PostgreSQL, Redis, web, worker
and beat from a temporary `PORTAL_VAR` on free ports (`scripts/services` with env overrides), the crashes
the benchmark inflicts on them, and a supervisor that restarts what dies as docker-compose's
`restart: unless-stopped` would.

Knows no Django: it starts the processes, kills them and reads their pid files. The shared dev services
(`/var/lib/namd-portal`, ports 55432/56379/8000) are never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
SERVICES = PROJECT_DIR / "scripts" / "services"
SUPERVISED = ("web", "worker", "beat")  # restarted when they die; PostgreSQL and Redis only by their fault
RESTART_EVERY_S = 2.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_gone(pid: int) -> bool:
    """No such process, or a zombie (its parent, pid 1 here, reaps only now and then)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pids: list[int], *, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(process_gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} outlived SIGKILL by {timeout_s:.0f} s")
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    listed = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in listed.stdout.split()]


class PrivateStack:
    """The bench's own PostgreSQL, Redis, web, worker and beat, under a temporary dir that `remove` deletes."""

    def __init__(self) -> None:
        self.var = Path(tempfile.mkdtemp(prefix="np-bench-faults-"))
        self.var.chmod(0o755)  # PostgreSQL runs as user postgres below it
        self.web_port = free_port()
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
        self.env |= {
            "PORTAL_VAR": str(self.var),
            "PORTAL_ENV_FILE": str(self.var / "portal.env"),
            "PORTAL_PG_PORT": str(free_port()),
            "PORTAL_REDIS_PORT": str(free_port()),
            "PORTAL_SMTP_PORT": str(free_port()),
            "PORTAL_WEB_PORT": str(self.web_port),
        }
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self._lock = threading.Lock()  # one scripts/services call at a time
        self._down: set[str] = set()  # taken down on purpose: the supervisor leaves them alone
        self.restarts: dict[str, int] = dict.fromkeys(SUPERVISED, 0)  # by the supervisor, not by a fault
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    # ------------------------------------------------------------------ scripts/services

    def services(self, *args: str, timeout_s: float = 180.0) -> None:
        with self._lock:
            result = subprocess.run(
                [str(SERVICES), *args],
                cwd=PROJECT_DIR,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"scripts/services {' '.join(args)} failed: {result.stderr.strip()[-500:]}")

    def use_in_this_process(self) -> None:
        """Point this process's settings (read at django.setup()) at the private set, nothing else."""
        for key in [key for key in os.environ if key.startswith("PORTAL_")]:
            del os.environ[key]
        os.environ.update({key: value for key, value in self.env.items() if key.startswith("PORTAL_")})

    def log(self, name: str) -> Path:
        return self.var / "log" / f"{name}.log"

    # ------------------------------------------------------------------ pids

    def pid(self, name: str) -> int | None:
        path = self.var / "pg" / "data" / "postmaster.pid" if name == "postgres" else self.var / "run" / f"{name}.pid"
        try:
            return int(path.read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def is_up(self, name: str) -> bool:
        pid = self.pid(name)
        return pid is not None and not process_gone(pid)

    # ------------------------------------------------------------------ faults

    def kill_worker(self) -> int:
        """SIGKILL the worker's process group (the main process and its pool children), then start it again.

        Returns how many processes died. `celery --detach` forks twice after setsid(): the group is the
        session's, distinct from the bench's.
        """
        pid = self.pid("worker")
        if pid is None or process_gone(pid):
            raise RuntimeError("the worker is not running")
        self._down.add("worker")
        try:
            group = os.getpgid(pid)
            victims = [pid, *children(pid)]
            os.killpg(group, signal.SIGKILL)
            wait_gone(victims)
            (self.var / "run" / "worker.pid").unlink(missing_ok=True)
            self.services("start", "worker")
        finally:
            self._down.discard("worker")
        return len(victims)

    def kill_redis(self) -> None:
        pid = self.pid("redis")
        if pid is None:
            raise RuntimeError("redis is not running")
        self._down.add("redis")
        os.kill(pid, signal.SIGKILL)
        wait_gone([pid])

    def kill_postgres(self) -> int:
        """SIGKILL the postmaster and every backend (each in a session of its own, so not as a group)."""
        pid = self.pid("postgres")
        if pid is None:
            raise RuntimeError("postgres is not running")
        self._down.add("postgres")
        victims = [pid, *children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        wait_gone(victims)
        return len(victims)

    def bring_back(self, name: str) -> None:
        self.services("start", name)
        self._down.discard(name)

    # ------------------------------------------------------------------ supervisor

    def supervise(self) -> None:
        """Restart web, worker or beat when one dies of something other than a fault (counted in `restarts`)."""

        def loop() -> None:
            while not self._stop.wait(RESTART_EVERY_S):
                if self._down & {"redis", "postgres"}:
                    continue  # a start waits for the broker or the database: after they are back
                for name in SUPERVISED:
                    if name in self._down or self.is_up(name):
                        continue
                    try:
                        self.services("start", name)
                        self.restarts[name] += 1
                        print(f"supervisor: {name} had died; restarted it", file=sys.stderr)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        print(f"supervisor: restarting {name} failed: {exc}", file=sys.stderr)

        self._supervisor = threading.Thread(target=loop, name="supervisor", daemon=True)
        self._supervisor.start()

    # ------------------------------------------------------------------ teardown

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=60)
        self.services("stop")

    def remove(self, *, keep: bool, announce: Callable[[str], None]) -> None:
        if keep:
            announce(f"kept the private services' data and logs in {self.var}")
            return
        shutil.rmtree(self.var, ignore_errors=True)
