"""The deployment, exercised: docker-compose.yml built and run here, a real job driven through it.

`make compose-test` runs this module alone; `make test` runs it with the rest. The stack (bench/compose_stack.py)
is the production compose file with deploy/compose.hostnet.yml on top: images built from Debian 12 packages
on a locally made base, host networking only, each service on its own 127.0.0.1 port, TLS at the proxy with
a certificate of the test's own. Against it, through the proxy's https, as a member would:

- it came up healthy, with the migrations run exactly once before web, workers and beat;
- a job of the built-in NPT template goes from create to COMPLETED on the local SLURM cluster, while the
  worker container is killed mid-sync (its main process SIGKILLed from the host: a crash, not a stop) and
  brought back by its restart policy;
- the logs of web, workers and beat are JSON lines; plain http is sent to https, with HSTS and secure cookies;
- a backup (`make backup`) restored into a fresh stack (`make restore`, volumes gone) still has the job;
- `down` leaves no container, volume or network of the project.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bench.compose_stack import ComposeStack, docker_env, run
from bench.member_client import MemberClient
from tests.conftest import PROJECT_DIR

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

LOCALCLUSTER = PROJECT_DIR / "scripts" / "localcluster" / "localcluster"
FIXTURES = PROJECT_DIR / "tests" / "fixtures" / "namd"
MEMBER = "np_compose"
RUN_STEPS = 6000  # about 12 s at the stand-in engine's pace: long enough to crash the worker under it


def wait_for(read: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


@pytest.fixture(scope="module")
def stack() -> Iterator[ComposeStack]:
    stack = ComposeStack("npcomposetest")
    stack.prepare()
    stack.build()
    try:
        stack.up()
        stack.wait_healthy("db", "redis", "web", "worker", timeout_s=300)
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def member_client(stack: ComposeStack) -> MemberClient:
    subprocess.run([str(LOCALCLUSTER), "add-user", MEMBER], check=True, capture_output=True, timeout=120)
    token = stack.member(MEMBER)
    stack.register_local_cluster(MEMBER)
    stack.manage("load_builtin_templates")
    return MemberClient(stack.base_url, token, rng=random.Random(17), ssl_context=stack.ssl_context())


def get(client: MemberClient, path: str) -> Any:
    answer = client.get(path, deadline=time.monotonic() + 60)
    assert answer.status == 200, answer
    return answer.body


def job_state(client: MemberClient, job_id: int) -> dict[str, Any]:
    return get(client, f"/api/v1/jobs/{job_id}")


def create_water_job(client: MemberClient) -> int:
    deadline = time.monotonic() + 120
    templates = get(client, "/api/v1/templates")
    template = next(t for t in templates if t["slug"] == "npt-equilibration")
    clusters = get(client, "/api/v1/clusters")
    values = {
        "structure": "water.psf",
        "coordinates": "water.pdb",
        "parameters": "par_water.prm",
        "output_energies": 500,
        "restart_every": RUN_STEPS,
        "dcd_every": RUN_STEPS,
        "minimize_steps": 50,
        "cell_x": 30.0,
        "cell_y": 30.0,
        "cell_z": 30.0,
        "run_steps": RUN_STEPS,
    }
    payload = {
        "template_id": template["id"],
        "cluster_id": clusters[0]["id"],
        "recipe": "CPU: namd2 under srun",
        "title": "compose test",
        "values": values,
        "resources": {"partition": "debug", "walltime_s": 900, "memory_mb": 256},
    }
    created = client.post_json("/api/v1/jobs", payload, deadline=deadline)
    assert created.status == 201, created
    job_id = created.body["id"]
    for name in ("water.psf", "water.pdb", "par_water.prm"):
        sent = client.post_file(
            f"/api/v1/jobs/{job_id}/inputs", "file", name, (FIXTURES / name).read_bytes(), deadline=deadline
        )
        assert sent.status == 202, sent
    return job_id


def test_the_stack_came_up_with_the_migrations_run_once_before_web_workers_and_beat(stack: ComposeStack) -> None:
    (migrate,) = stack.containers("migrate")
    state = json.loads(run(["docker", "inspect", "--format", "{{json .State}}", migrate]))
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 0
    stack.manage("migrate", "--check")  # exits 1 if a migration were left
    for service in ("web", "worker", "beat"):
        (container,) = stack.containers(service)
        started = json.loads(run(["docker", "inspect", "--format", "{{json .State.StartedAt}}", container]))
        assert started > state["FinishedAt"], f"{service} started before the migrations ended"
    assert stack.health(stack.containers("web")[0]) == "healthy"
    assert stack.health(stack.containers("worker")[0]) == "healthy"


def test_a_job_runs_to_completed_through_the_tls_proxy_while_the_worker_container_crashes_mid_sync(
    stack: ComposeStack, member_client: MemberClient
) -> None:
    job_id = create_water_job(member_client)
    wait_for(lambda: job_state(member_client, job_id)["state"] == "READY", timeout_s=180, what="the inputs (READY)")
    submitted = member_client.post_json(f"/api/v1/jobs/{job_id}/submit", None, deadline=time.monotonic() + 60)
    assert submitted.status == 202, submitted
    wait_for(lambda: job_state(member_client, job_id)["state"] == "RUNNING", timeout_s=180, what="RUNNING")

    (worker,) = stack.containers("worker")
    pid = int(run(["docker", "inspect", "--format", "{{.State.Pid}}", worker]))
    os.kill(pid, signal.SIGKILL)  # the container's main process: a crash; restart: unless-stopped brings it back
    wait_for(
        lambda: int(run(["docker", "inspect", "--format", "{{.RestartCount}}", worker])) >= 1,
        timeout_s=60,
        what="the worker container's restart",
    )

    job = wait_for(
        lambda: (job := job_state(member_client, job_id))["finished_at"] and job,
        timeout_s=420,
        what="the job to finish after the worker's crash",
        every_s=3,
    )
    assert job["state"] == "COMPLETED", job
    assert job["exit_code"] == 0
    files = member_client.get(f"/api/v1/jobs/{job_id}/files", deadline=time.monotonic() + 60)
    assert files.status in (200, 202), files


def test_web_workers_and_beat_log_json_lines_only(stack: ComposeStack, member_client: MemberClient) -> None:
    for service in ("web", "worker", "beat"):
        lines = [line for line in stack.logs(service).splitlines() if line.strip()]
        assert lines, f"{service} logged nothing"
        not_json = [line for line in lines if not line.startswith("{")]
        assert not not_json, f"{service} wrote lines that are not JSON: {not_json[:5]}"
        assert all("event" in json.loads(line) for line in lines)


def test_plain_http_is_sent_to_https_with_hsts_and_secure_cookies(stack: ComposeStack) -> None:
    http_port, https_port = stack.ports["HTTP"], stack.ports["HTTPS"]
    request = urllib.request.Request(f"http://localhost:{http_port}/login/", method="GET")
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(request, timeout=30)
    assert redirect.value.code == 308 or redirect.value.code == 301
    assert redirect.value.headers["Location"] == f"https://localhost:{https_port}/login/"

    with urllib.request.urlopen(f"{stack.base_url}/login/", timeout=30, context=stack.ssl_context()) as page:
        assert page.status == 200
        assert "max-age=" in page.headers["Strict-Transport-Security"]
        cookies = page.headers.get_all("Set-Cookie") or []
    assert cookies
    assert all("Secure" in cookie for cookie in cookies)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_a_backup_restored_into_a_fresh_stack_still_has_the_jobs(
    stack: ComposeStack, member_client: MemberClient
) -> None:
    jobs_before = get(member_client, "/api/v1/jobs")["items"]
    assert jobs_before, "the job test left a job to find"
    compose = shlex.join(stack.compose_argv())
    backup = stack.folder / "backup.dump"
    make = ["make", "-s", "-C", str(PROJECT_DIR)]
    subprocess.run(
        [*make, "backup", f"FILE={backup}", f"PORTAL_COMPOSE={compose}"], env=docker_env(), check=True, timeout=300
    )
    assert backup.stat().st_size > 10_000

    stack.compose("down", "--volumes", "--timeout", "20", timeout_s=300)  # a fresh stack: every volume gone
    stack.up()
    stack.wait_healthy("db", "redis", "web", "worker", timeout_s=300)
    fresh = member_client.get("/api/v1/jobs", deadline=time.monotonic() + 60)
    assert fresh.status == 401  # the member's token is in the backup, not in the new database

    subprocess.run(
        [*make, "restore", f"FILE={backup}", f"PORTAL_COMPOSE={compose}"], env=docker_env(), check=True, timeout=600
    )
    stack.wait_healthy("db", "redis", "web", "worker", timeout_s=300)
    jobs_after = get(member_client, "/api/v1/jobs")["items"]
    assert [(job["id"], job["state"], job["slurm_job_id"]) for job in jobs_after] == [
        (job["id"], job["state"], job["slurm_job_id"]) for job in jobs_before
    ]


def test_down_removes_every_container_volume_and_network_of_the_project(stack: ComposeStack) -> None:
    stack.down()
    assert stack.leftovers() == {"containers": [], "volumes": [], "networks": []}
    assert not stack.env_file.exists()
