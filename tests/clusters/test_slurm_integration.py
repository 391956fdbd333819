"""SlurmClient against the real local SLURM 22.05 cluster (scripts/localcluster) over pinned-key SSH.

The run callables are the portal's real transport (clusters.ssh ConnectionPool).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from clusters.slurm import (
    JobStatus,
    PortalState,
    SbatchErrorCode,
    SbatchRejected,
    SlurmClient,
    StatusSource,
)
from clusters.ssh import CommandResult, ConnectionPool, ConnectionSpec
from tests.local_cluster import add_cluster_user, cluster_facts

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[2]
CLUSTER_USER = "np_ci_slurm"
JOB_TIMEOUT_S = 90
# Far above any id this cluster hands out during a test run, and digits only.
NEVER_SUBMITTED_JOB_ID = "987654321"


@dataclass(frozen=True)
class Cluster:
    pool: ConnectionPool
    spec: ConnectionSpec
    client: SlurmClient
    uid: int
    scratch: str

    def run(self, argv: Sequence[str], *, stdin: bytes | None = None, timeout_s: float = 30) -> CommandResult:
        return self.pool.run(self.spec, list(argv), identity="slurm-tests", stdin=stdin, timeout_s=timeout_s)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """SlurmClient over the portal's real transport (pooled paramiko, pinned host key)."""
    facts = cluster_facts()
    uid = add_cluster_user(CLUSTER_USER)
    spec = ConnectionSpec(
        host=facts["LOCALCLUSTER_HOST"],
        port=int(facts["LOCALCLUSTER_PORT"]),
        username=CLUSTER_USER,
        pinned_host_keys=(" ".join(Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]).read_text().split()[:2]),),
        private_key=(Path(facts["LOCALCLUSTER_KEYS_DIR"]) / CLUSTER_USER).read_text(),
    )
    pool = ConnectionPool()

    def run(argv: Sequence[str], timeout_s: float) -> CommandResult:
        return pool.run(spec, list(argv), identity="slurm-tests", timeout_s=timeout_s)

    def run_sequence(argvs: Sequence[Sequence[str]], timeout_s: float) -> list[CommandResult]:
        return pool.run_sequence(spec, [list(argv) for argv in argvs], identity="slurm-tests", timeout_s=timeout_s)

    client = SlurmClient(run=run, run_sequence=run_sequence)
    yield Cluster(pool=pool, spec=spec, client=client, uid=uid, scratch=f"/scratch/{CLUSTER_USER}")
    pool.close_all()


@pytest.fixture
def workdir(cluster: Cluster) -> Iterator[str]:
    path = f"{cluster.scratch}/slurm-{uuid.uuid4().hex[:8]}"
    assert cluster.run(["mkdir", "-m", "700", "--", path]).exit_code == 0
    yield path
    cluster.run(["rm", "-rf", "--", path])


@pytest.fixture
def submitted(cluster: Cluster) -> Iterator[list[str]]:
    """Ids the test submitted; each is cancelled afterwards (a no-op for a finished job)."""
    job_ids: list[str] = []
    yield job_ids
    for job_id in job_ids:
        cluster.client.cancel(job_id)


def upload_script(cluster: Cluster, workdir: str, name: str, body: str) -> str:
    path = f"{workdir}/{name}"
    script = f"#!/bin/bash\n#SBATCH --output={workdir}/{name}.log\n{body}\n".encode()
    assert cluster.run(["dd", f"of={path}", "status=none"], stdin=script).exit_code == 0
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
