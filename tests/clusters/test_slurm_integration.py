"""SlurmClient against the real local SLURM 22.05 cluster (scripts/localcluster) over pinned-key SSH.

The run callables here are a minimal stand-in for clusters/transport.py: paramiko, RejectPolicy with
the pinned host key, TCP_NODELAY, one exec per call, argvs joined only with shlex.join.
"""

from __future__ import annotations

import base64
import shlex
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from clusters.slurm import JobStatus, PortalState, SbatchErrorCode, SbatchRejected, SlurmClient, StatusSource
from clusters.transport import CommandResult

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[2]
LOCALCLUSTER = PROJECT_DIR / "scripts" / "localcluster" / "localcluster"
CLUSTER_USER = "np_ci_slurm"
JOB_TIMEOUT_S = 90
# Far above any id this cluster hands out during a test run, and digits only.
NEVER_SUBMITTED_JOB_ID = "987654321"


def localcluster(*args: str) -> str:
    result = subprocess.run([str(LOCALCLUSTER), *args], capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.fail(f"localcluster {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


@dataclass(frozen=True)
class Cluster:
    ssh: paramiko.SSHClient
    client: SlurmClient
    uid: int
    scratch: str


def connect(host: str, port: int, host_key_pub: Path, private_key: Path) -> paramiko.SSHClient:
    key_type, key_b64 = host_key_pub.read_text().split()[:2]
    ssh = paramiko.SSHClient()
    ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
    ssh.get_host_keys().add(f"[{host}]:{port}", key_type, paramiko.Ed25519Key(data=base64.b64decode(key_b64)))
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # Nagle otherwise adds ~40 ms a command
    ssh.connect(
        host,
        port=port,
        username=CLUSTER_USER,
        pkey=paramiko.PKey.from_path(private_key),
        sock=sock,
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
        banner_timeout=10,
        auth_timeout=10,
    )
    return ssh


def exec_line(ssh: paramiko.SSHClient, argv: Sequence[str], line: str, timeout_s: float) -> CommandResult:
    started = time.monotonic()
    _stdin, stdout, stderr = ssh.exec_command(line, timeout=timeout_s)
    out, err = stdout.read().decode(), stderr.read().decode()
    return CommandResult(
        argv=tuple(argv),
        exit_code=stdout.channel.recv_exit_status(),
        stdout=out,
        stderr=err,
        duration_s=time.monotonic() - started,
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    facts = dict(line.split("=", 1) for line in localcluster("env").splitlines() if "=" in line)
    uid = int(localcluster("add-user", CLUSTER_USER).strip())
    ssh = connect(
        facts["LOCALCLUSTER_HOST"],
        int(facts["LOCALCLUSTER_PORT"]),
        Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]),
        Path(facts["LOCALCLUSTER_KEYS_DIR"]) / CLUSTER_USER,
    )

    def run(argv: Sequence[str], timeout_s: float) -> CommandResult:
        return exec_line(ssh, argv, shlex.join(argv), timeout_s)

    def run_sequence(argvs: Sequence[Sequence[str]], timeout_s: float) -> CommandResult:
        flat = [arg for argv in argvs for arg in argv]
        return exec_line(ssh, flat, " ; ".join(shlex.join(argv) for argv in argvs), timeout_s)

    yield Cluster(
        ssh=ssh, client=SlurmClient(run=run, run_sequence=run_sequence), uid=uid, scratch=f"/scratch/{CLUSTER_USER}"
    )
    ssh.close()


@pytest.fixture
def workdir(cluster: Cluster) -> Iterator[str]:
    path = f"{cluster.scratch}/slurm-{uuid.uuid4().hex[:8]}"
    with cluster.ssh.open_sftp() as sftp:
        sftp.mkdir(path, mode=0o700)
    yield path
    exec_line(cluster.ssh, ["rm", "-rf", "--", path], shlex.join(["rm", "-rf", "--", path]), 30)


@pytest.fixture
def submitted(cluster: Cluster) -> Iterator[list[str]]:
    """Ids the test submitted; each is cancelled afterwards (a no-op for a finished job)."""
    job_ids: list[str] = []
    yield job_ids
    for job_id in job_ids:
        cluster.client.cancel(job_id)


def upload_script(cluster: Cluster, workdir: str, name: str, body: str) -> str:
    path = f"{workdir}/{name}"
    with cluster.ssh.open_sftp() as sftp, sftp.open(path, "w") as remote_file:
        remote_file.write(f"#!/bin/bash\n#SBATCH --output={workdir}/{name}.log\n{body}\n".encode())
    return path


def wait_for(cluster: Cluster, job_id: str, done: Callable[[JobStatus], bool]) -> dict[str, JobStatus]:
    """Poll statuses once a second until `done(status)` holds; returns those statuses."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    statuses: dict[str, JobStatus] = {}
    while time.monotonic() < deadline:
        statuses = cluster.client.statuses([job_id])
        if job_id in statuses and done(statuses[job_id]):
            return statuses
        time.sleep(1)
    pytest.fail(f"job {job_id} never reached the expected status; last: {statuses}")


def tag() -> str:
    return f"np-ci-{uuid.uuid4().hex[:12]}"


def test_submit_status_of_live_finished_and_unknown_then_cancel(
    cluster: Cluster, workdir: str, submitted: list[str]
) -> None:
    failing = cluster.client.submit(upload_script(cluster, workdir, "fail.sbatch", "exit 3"), tag())
    submitted.append(failing)
    wait_for(cluster, failing, lambda status: status.is_terminal and status.source is StatusSource.SACCT)
    live_tag = tag()
    live = cluster.client.submit(upload_script(cluster, workdir, "sleep.sbatch", "sleep 300"), live_tag)
    submitted.append(live)

    statuses = cluster.client.statuses([live, failing, NEVER_SUBMITTED_JOB_ID])

    assert sorted(statuses) == sorted([live, failing])
    assert statuses[live].state in (PortalState.PENDING, PortalState.RUNNING)
    assert statuses[live].source is StatusSource.SQUEUE
    assert (statuses[failing].state, statuses[failing].exit_code) == (PortalState.FAILED, 3)
    assert cluster.client.find_by_name(live_tag) == [live]

    cluster.client.cancel(live)
    cancelled = wait_for(cluster, live, lambda status: status.state_verbatim.startswith("CANCELLED by"))

    assert cancelled[live].state is PortalState.CANCELLED
    assert cancelled[live].state_verbatim == f"CANCELLED by {cluster.uid}"


def test_lone_never_submitted_id_is_absent(cluster: Cluster) -> None:
    # squeue alone exits 1 for it ("Invalid job id specified"): still no error, just no status.
    assert cluster.client.statuses([NEVER_SUBMITTED_JOB_ID]) == {}


def test_invalid_partition_is_classified(cluster: Cluster, workdir: str) -> None:
    script = upload_script(cluster, workdir, "never.sbatch", "true")

    with pytest.raises(SbatchRejected) as excinfo:
        cluster.client.submit(script, tag(), extra_args=["--partition=nonexist"])

    assert excinfo.value.error.code is SbatchErrorCode.INVALID_PARTITION
    assert "Invalid partition name specified" in excinfo.value.error.stderr_excerpt


def test_find_by_name_of_an_unused_tag_is_empty(cluster: Cluster) -> None:
    assert cluster.client.find_by_name(tag()) == []
