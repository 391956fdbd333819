"""`manage.py run_workers`: one `celery worker` per queue, supervised, so a slow cluster holds up only itself.

The deployment's worker entry point. It runs one child `celery worker` for the default queue and one per
cluster profile's queue (`portal.queues`), each consuming that queue alone (`--no-cluster-queues`) with
its own processes: a login node that answers in seconds, or a results copy that takes an hour, occupies
only its cluster's child. Every few seconds it reads the profile list again: a new profile gets its
child, a deleted profile's child is stopped (warm: it finishes what it runs). A child that died is
started again (after a backoff when it keeps dying at start). SIGTERM or SIGINT stops every child warmly
and waits for them (a second signal makes it cold: running tasks are acknowledged late and their orders
sent again), then it exits 0.

Children run in sessions of their own (a terminal's Ctrl-C reaches them only through this supervisor)
and get SIGTERM if the supervisor dies without stopping them (Linux's parent-death signal). Must never
know what a task does.
"""

from __future__ import annotations

import ctypes
import logging
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from django.db import DatabaseError, connections

from portal.queues import cluster_queues, default_queue

logger = logging.getLogger(__name__)

POLL_S = 3.0  # how soon a new profile gets its worker
LOOP_S = 0.2
STEADY_S = 30.0  # a child that lived this long and died is restarted at once
MAX_BACKOFF_S = 60.0
_PR_SET_PDEATHSIG = 1
# Where a supervisor writes its node name: a worker container's health check (`check_worker --here`) asks
# the Celery workers of this node only. Containers on the host's network share a hostname, so the node is
# the hostname and a random tag of this supervisor's own.
NODE_FILE = Path(tempfile.gettempdir()) / "portal-worker-node"


def new_node_name() -> str:
    return f"{socket.gethostname()}.{secrets.token_hex(3)}"


@dataclass
class Child:
    queue: str
    concurrency: int
    process: subprocess.Popen[bytes]
    started_at: float


@dataclass
class Restart:
    """A queue whose child died: started again at `not_before` (monotonic); `failures` quick deaths so far."""

    failures: int = 0
    not_before: float = 0.0


@dataclass
class WorkerSupervisor:
    concurrency: int = 2
    cluster_concurrency: int = 2
    loglevel: str = "INFO"
    pool: str = ""
    poll_s: float = POLL_S
    children: dict[str, Child] = field(default_factory=dict)
    leaving: list[Child] = field(default_factory=list)  # told to stop (profile deleted), not exited yet
    restarts: dict[str, Restart] = field(default_factory=dict)
    signals: int = 0
    _wanted: dict[str, int] = field(default_factory=dict)
    _read_at: float = float("-inf")
    node: str = field(default_factory=new_node_name)

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT, then stop every child warmly; 0."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        NODE_FILE.write_text(self.node)
        logger.info("workers_supervising", extra={"default_queue": default_queue(), "node": self.node})
        while not self.signals:
            self.reconcile(time.monotonic())
            time.sleep(LOOP_S)
        self.stop_all()
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals > 1:  # asked again while stopping: cold shutdown of what is left
            for child in self._all_children():
                _signal(child, signal.SIGQUIT)

    def wanted(self, now: float) -> dict[str, int]:
        """Queue -> concurrency: the default queue and every profile's (the last list read, every poll_s)."""
        if now - self._read_at >= self.poll_s:
            self._read_at = now
            try:
                queues = cluster_queues()
            except DatabaseError as exc:  # PostgreSQL away: keep the workers there are
                logger.warning("workers_profiles_unread", extra={"error": str(exc)[:200]})
                connections.close_all()
            else:
                self._wanted = {
                    default_queue(): self.concurrency,
                    **dict.fromkeys(queues.values(), self.cluster_concurrency),
                }
        return self._wanted or {default_queue(): self.concurrency}

    def reconcile(self, now: float) -> None:
        """Reap the dead, start the missing, stop the unwanted."""
        wanted = self.wanted(now)
        for queue, child in list(self.children.items()):
            returncode = child.process.poll()
            if returncode is None:
                continue
            del self.children[queue]
            restart = self.restarts.setdefault(queue, Restart())
            restart.failures = restart.failures + 1 if now - child.started_at < STEADY_S else 0
            restart.not_before = now + min(2.0**restart.failures - 1, MAX_BACKOFF_S)
            logger.warning(
                "worker_exited",
                extra={"queue": queue, "pid": child.process.pid, "returncode": returncode, "restart": queue in wanted},
            )
        self.leaving = [child for child in self.leaving if child.process.poll() is None]
        for queue, concurrency in wanted.items():
            restart = self.restarts.get(queue)
            if queue not in self.children and (restart is None or now >= restart.not_before):
                self.children[queue] = self.start(queue, concurrency, now)
        for queue in [queue for queue in self.restarts if queue not in wanted]:
            del self.restarts[queue]  # a dead child's profile went meanwhile: nothing to start again
        for queue in [queue for queue in self.children if queue not in wanted]:
            child = self.children.pop(queue)
            self.restarts.pop(queue, None)
            logger.info("worker_stopping", extra={"queue": queue, "pid": child.process.pid, "reason": "profile gone"})
            _signal(child, signal.SIGTERM)
            self.leaving.append(child)

    def stop_all(self) -> None:
        """Warm shutdown of every child (each finishes its running tasks), waited for."""
        children = self._all_children()
        logger.info("workers_stopping", extra={"workers": len(children)})
        for child in children:
            _signal(child, signal.SIGTERM)
        for child in children:
            while child.process.poll() is None:
                time.sleep(LOOP_S)
        self.children.clear()
        self.leaving.clear()
        logger.info("workers_stopped", extra={"workers": len(children)})

    def _all_children(self) -> list[Child]:
        return [*self.children.values(), *self.leaving]

    # ------------------------------------------------------------------ one child

    def argv(self, queue: str, concurrency: int) -> list[str]:
        """The child's command: this queue only, a node name of its own, no following of other queues."""
        # --quiet: no start-up banner, so every line the container writes is one of the logs' JSON objects.
        argv = [sys.executable, "-m", "celery", "-A", "portal", "--quiet", "worker", "--queues", queue]
        argv += ["--hostname", f"{queue}@{self.node}", "--concurrency", str(concurrency), "--no-cluster-queues"]
        # Gossip and mingle talk to every other worker: with a worker per cluster that is much chatter for
        # nothing this portal uses (task state lives in PostgreSQL).
        argv += ["--without-gossip", "--without-mingle", "--loglevel", self.loglevel]
        return argv + (["--pool", self.pool] if self.pool else [])

    def start(self, queue: str, concurrency: int, now: float) -> Child:
        process = subprocess.Popen(self.argv(queue, concurrency), start_new_session=True, preexec_fn=_die_with_parent)
        logger.info("worker_started", extra={"queue": queue, "pid": process.pid, "concurrency": concurrency})
        return Child(queue=queue, concurrency=concurrency, process=process, started_at=now)


def _signal(child: Child, signum: int) -> None:
    if child.process.poll() is None:
        child.process.send_signal(signum)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM (warm shutdown) when the supervisor dies, e.g. SIGKILLed."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
