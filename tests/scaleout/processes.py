"""What the scale-out tests read off real processes: a supervisor's children, log lines, sshd's logins."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.local_cluster import cluster_facts


def children_by_queue(parent_pid: int) -> dict[str, int]:
    """The `celery worker` children of `parent_pid` (run_workers) by the one queue each consumes."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # it ended meanwhile
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent_pid and b"--queues" in argv:
            found[argv[argv.index(b"--queues") + 1].decode()] = int(proc.name)
    return found


def log_lines(path: Path, text: str) -> list[str]:
    return [line for line in path.read_text(errors="replace").splitlines() if text in line]


def is_alive(pid: int) -> bool:
    """Running (a zombie, dead and not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class SshdLogins:
    """New SSH sessions of some cluster users, as the local cluster's sshd logs them ("Accepted publickey for
    USER"), each stamped (monotonic) when read; read every 0.1 s from where the log ended at start."""

    usernames: set[str]
    logins: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.path = Path(cluster_facts()["LOCALCLUSTER_STATE"]) / "log" / "sshd.log"
        self._offset = self.path.stat().st_size
        self._pattern = re.compile(r"Accepted \S+ for (\S+) from")
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(0.1):
            self.read()

    def read(self) -> None:
        with self.path.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        now = time.monotonic()
        for line in complete.decode(errors="replace").splitlines():
            match = self._pattern.search(line)
            if match and match.group(1) in self.usernames:
                self.logins.append((now, match.group(1)))

    def stop(self) -> list[tuple[float, str]]:
        self._stop.set()
        self._thread.join(timeout=5)
        self.read()
        return self.logins


def most_in_any_window(stamps: list[float], window_s: float) -> int:
    """The most stamps that fall within any `window_s` span."""
    stamps = sorted(stamps)
    return max(
        (sum(1 for later in stamps[i:] if later - first <= window_s) for i, first in enumerate(stamps)), default=0
    )
