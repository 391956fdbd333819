"""Two real `celery beat` processes (two machines' or containers') on one Redis: exactly one runs the schedule;
once it is killed outright, the other takes over when the lock it left runs out (portal/beat.py)."""

from __future__ import annotations

import os
import signal
from contextlib import ExitStack
from pathlib import Path

from tests.conftest import celery_process
from tests.jobs.cluster_jobs import wait_for
from tests.scaleout.processes import log_lines

SENT = "Scheduler: Sending due task"


def test_one_of_two_beats_schedules_and_the_other_takes_over_when_it_is_killed(
    tmp_path, portal_file_store, private_queue
) -> None:
    with ExitStack() as stack:
        beats: dict[str, tuple[object, Path]] = {}
        for name in ("east", "west"):
            log = tmp_path / f"{name}.log"
            arguments = ["beat", "--schedule", str(tmp_path / f"{name}-schedule"), "--pidfile", str(tmp_path / name)]
            process = stack.enter_context(
                celery_process(arguments, queue=private_queue, log_path=log, file_store=portal_file_store)
            )
            beats[name] = (process, log)

        def roles() -> dict[str, str] | None:
            seen = {
                name: [line for line in log_lines(log, "beat_") if "beat_active" in line or "beat_standby" in line]
                for name, (_, log) in beats.items()
            }
            if not all(seen.values()):
                return None
            return {name: "active" if "beat_active" in lines[-1] else "standby" for name, lines in seen.items()}

        first_roles = wait_for(roles, timeout_s=60, what="both beats to say whether they hold the lock")
        assert sorted(first_roles.values()) == ["active", "standby"]
        active = next(name for name, role in first_roles.items() if role == "active")
        standby = next(name for name in beats if name != active)
        active_process, active_log = beats[active]
        standby_log = beats[standby][1]
        wait_for(lambda: len(log_lines(active_log, SENT)) >= 6, timeout_s=60, what="the active beat to schedule")
        assert log_lines(standby_log, SENT) == []

        os.kill(active_process.pid, signal.SIGKILL)  # no clean stop: its lock is left to run out
        active_process.wait(timeout=10)
        wait_for(lambda: log_lines(standby_log, "beat_active"), timeout_s=90, what="the standby to take over")
        wait_for(lambda: len(log_lines(standby_log, SENT)) >= 3, timeout_s=60, what="the new active beat to schedule")
        assert log_lines(standby_log, "beat_standby")  # it did stand by first
