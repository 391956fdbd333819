"""The fault benchmark's own parts: its seeded schedule, the overlap rule for results copies, the member
client's patience with a server in trouble, and `scripts/services` writing a private set's env file without
touching the project's `.env`. The faults themselves run only in `python -m bench.faults`.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.faults import FIRST_FAULT_S, FULL, Plan, overlapping, schedule
from bench.member_client import GaveUp, MemberClient
from bench.private_stack import PROJECT_DIR


def test_schedule_is_seeded_and_puts_every_fault_in_the_window_one_at_a_time():
    first = schedule(FULL, random.Random(3), window_s=368.0)
    again = schedule(FULL, random.Random(3), window_s=368.0)

    assert [(f.kind, f.at_s) for f in first] == [(f.kind, f.at_s) for f in again]
    assert Counter(f.kind for f in first) == {"worker": 5, "redis": 1, "postgres": 1, "sshd": 1, "slurmctld": 1}
    assert first[0].at_s >= FIRST_FAULT_S
    for earlier, later in itertools.pairwise(first):
        assert later.at_s >= earlier.at_s + earlier.expected_s
    assert first[-1].at_s + first[-1].expected_s <= 368.0


def test_a_schedule_without_cluster_faults_leaves_sshd_and_slurmctld_alone():
    plan = Plan(4, 10, 2, 5.0, 5.0, 5.0, 5.0, cluster_faults=False)

    kinds = {fault.kind for fault in schedule(plan, random.Random(1), window_s=100.0)}

    assert kinds == {"worker", "redis", "postgres"}


@pytest.mark.parametrize(
    ("second_starts_s", "expected"),
    [(5, True), (10, False), (30, False)],
    ids=["overlapping", "touching", "apart"],
)
def test_two_copies_overlap_only_when_one_starts_before_the_other_ends(second_starts_s, expected):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first = (start, start + timedelta(seconds=10))
    second = (start + timedelta(seconds=second_starts_s), start + timedelta(seconds=second_starts_s + 10))

    assert overlapping([second, first]) is expected


class Flaky(BaseHTTPRequestHandler):
    """Answers 503, then 429, then 202."""

    answers = [503, 429, 202]
    seen: list[int] = []

    def do_POST(self):
        status = self.answers[min(len(self.seen), len(self.answers) - 1)]
        self.seen.append(status)
        body = b'{"task_id": "t"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_server():
    Flaky.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_member_client_tries_again_on_503_and_429_until_an_answer(flaky_server):
    client = MemberClient(flaky_server, "np_x", rng=random.Random(0))

    answer = client.post_json("/api/v1/jobs/1/submit", None, deadline=time.monotonic() + 30)

    assert (answer.status, Flaky.seen, client.retries) == (202, [503, 429, 202], 2)


def test_the_member_client_gives_up_at_its_deadline(flaky_server):
    Flaky.answers = [503]
    client = MemberClient(flaky_server, "np_x", rng=random.Random(0))
    try:
        with pytest.raises(GaveUp):
            client.post_json("/api/v1/jobs/1/submit", None, deadline=time.monotonic() + 1)
    finally:
        Flaky.answers = [503, 429, 202]


def test_services_writes_a_named_env_file_and_leaves_the_project_env_alone(tmp_path):
    project_env = PROJECT_DIR / ".env"
    before = os.readlink(project_env) if project_env.is_symlink() else None
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env |= {"PORTAL_VAR": str(tmp_path), "PORTAL_ENV_FILE": str(tmp_path / "private.env"), "PORTAL_PG_PORT": "1"}

    subprocess.run([str(PROJECT_DIR / "scripts" / "services"), "env"], env=env, check=True, capture_output=True)

    written = Path(tmp_path / "private.env").read_text()
    assert "PORTAL_DB_PORT=1\n" in written
    assert f"PORTAL_FILE_STORE={tmp_path}/files\n" in written
    assert (os.readlink(project_env) if project_env.is_symlink() else None) == before
