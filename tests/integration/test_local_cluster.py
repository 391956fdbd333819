"""The local SLURM cluster (scripts/localcluster) end to end: pinned-host-key SSH, SFTP, sbatch, sacct.

Needs the cluster running (`scripts/localcluster/localcluster start`, done by `make test`) and root,
to create the cluster user. Knows nothing of the portal: it talks to the cluster as the portal does.
"""

from __future__ import annotations

import base64
import shlex
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from tests import local_cluster

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[2]
CLUSTER_USER = "np_ci_alice"
COMMAND_TIMEOUT_S = 30
JOB_TIMEOUT_S = 90
TERMINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED")

# A single TIP3 water: the smallest system the stand-in engine accepts.
WATER_PSF = """\
PSF

       1 !NTITLE
 REMARKS one TIP3 water for the local cluster test

       3 !NATOM
       1 WAT  1    TIP3 OH2  OT    -0.834000       15.9994           0
       2 WAT  1    TIP3 H1   HT     0.417000        1.0080           0
       3 WAT  1    TIP3 H2   HT     0.417000        1.0080           0

       2 !NBOND: bonds
       1       2       1       3

       1 !NTHETA: angles
       2       1       3

       0 !NPHI: dihedrals


       0 !NIMPHI: impropers


       0 !NDON: donors


       0 !NACC: acceptors


       0 !NNB


       1       0 !NGRP
       0       0       0

"""

WATER_PARAMS = """\
* TIP3P water, CHARMM format
*

BONDS
OT   HT    450.0   0.9572
HT   HT      0.0   1.5139

ANGLES
HT   OT   HT     55.0   104.52

DIHEDRALS

IMPROPER

NONBONDED nbxmod  5 atom cdiel shift vatom vdistance vswitch -
cutnb 14.0 ctofnb 12.0 ctonnb 10.0 eps 1.0 e14fac 1.0 wmin 1.5
OT     0.000000  -0.152100     1.768200
HT     0.000000  -0.046000     0.224500

END
"""

VALID_CONFIG = """\
structure          water.psf
coordinates        water.pdb
parameters         par_water.prm
paraTypeCharmm     on
temperature        300
outputName         out
outputEnergies     10
exclude            scaled1-4
cutoff             12
timestep           1.0
minimize           50
run                100
"""


def water_pdb() -> str:
    """PDB ATOM records in their fixed columns (name 13-16, residue 18-21, x/y/z 31-54, segid 73-76)."""
    atoms = [("OH2", 0.0, 0.0, 0.0, "O"), ("H1", 0.9572, 0.0, 0.0, "H"), ("H2", -0.2400, 0.9266, 0.0, "H")]
    lines = [
        f"ATOM  {serial:5d} {name:<4s} TIP3W   1    {x:8.3f}{y:8.3f}{z:8.3f}{1.0:6.2f}{0.0:6.2f}      WAT {element:>2s}"
        for serial, (name, x, y, z, element) in enumerate(atoms, start=1)
    ]
    return "\n".join([*lines, "END", ""])


def batch_script(job_name: str) -> str:
    return f"""\
#!/bin/bash
#SBATCH --job-name={job_name}
#SBATCH --output=job.log
#SBATCH --time=00:05:00
#SBATCH --ntasks=1
export NAMD_STANDIN_STEPS_PER_SECOND=2000
namd2 +p1 job.namd
"""


@dataclass(frozen=True)
class ClusterFacts:
    host: str
    port: int
    host_key_pub: Path
    keys_dir: Path


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def cluster_facts() -> ClusterFacts:
    facts = local_cluster.cluster_facts()
    return ClusterFacts(
        host=facts["LOCALCLUSTER_HOST"],
        port=int(facts["LOCALCLUSTER_PORT"]),
        host_key_pub=Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]),
        keys_dir=Path(facts["LOCALCLUSTER_KEYS_DIR"]),
    )


@pytest.fixture(scope="session")
def cluster_uid(cluster_facts: ClusterFacts) -> int:
    return local_cluster.add_cluster_user(CLUSTER_USER)


def pinned_host_key(facts: ClusterFacts) -> paramiko.PKey:
    key_type, key_b64 = facts.host_key_pub.read_text().split()[:2]
    assert key_type == "ssh-ed25519"
    return paramiko.Ed25519Key(data=base64.b64decode(key_b64))


def connect(facts: ClusterFacts, host_keys: dict[str, paramiko.PKey]) -> paramiko.SSHClient:
    """An SSH connection that accepts only the given host keys (RejectPolicy), as the portal connects."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    for host, key in host_keys.items():
        client.get_host_keys().add(host, key.get_name(), key)
    sock = socket.create_connection((facts.host, facts.port), timeout=10)
    # Nagle's algorithm otherwise adds ~40 ms to every command.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        client.connect(
            facts.host,
            port=facts.port,
            username=CLUSTER_USER,
            pkey=paramiko.PKey.from_path(facts.keys_dir / CLUSTER_USER),
            sock=sock,
            allow_agent=False,
            look_for_keys=False,
            timeout=10,
            banner_timeout=10,
            auth_timeout=10,
        )
    except Exception:
        client.close()
        sock.close()
        raise
    return client


@pytest.fixture(scope="session")
def ssh(cluster_facts: ClusterFacts, cluster_uid: int) -> Iterator[paramiko.SSHClient]:
    pinned = {f"[{cluster_facts.host}]:{cluster_facts.port}": pinned_host_key(cluster_facts)}
    client = connect(cluster_facts, pinned)
    yield client
    client.close()


def run(client: paramiko.SSHClient, argv: list[str]) -> CommandResult:
    """Run one remote command; the remote shell splits the line again, so it is built with shlex.join."""
    _stdin, stdout, stderr = client.exec_command(shlex.join(argv), timeout=COMMAND_TIMEOUT_S)
    out = stdout.read().decode()
    err = stderr.read().decode()
    return CommandResult(exit_code=stdout.channel.recv_exit_status(), stdout=out, stderr=err)


@pytest.fixture
def workdir(ssh: paramiko.SSHClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh directory in the user's scratch root, removed afterwards."""
    path = f"/scratch/{CLUSTER_USER}/{request.node.name}-{uuid.uuid4().hex[:8]}"
    with ssh.open_sftp() as sftp:
        sftp.mkdir(path, mode=0o700)
    yield path
    run(ssh, ["rm", "-rf", "--", path])


def upload_job(client: paramiko.SSHClient, workdir: str, *, config: str, job_name: str) -> None:
    files = {
        "water.psf": WATER_PSF,
        "water.pdb": water_pdb(),
        "par_water.prm": WATER_PARAMS,
        "job.namd": config,
        "job.sbatch": batch_script(job_name),
    }
    with client.open_sftp() as sftp:
        for name, text in files.items():
            with sftp.open(f"{workdir}/{name}", "w") as remote_file:
                remote_file.write(text.encode())


def submit(client: paramiko.SSHClient, workdir: str) -> str:
    result = run(client, ["sbatch", "--parsable", f"--chdir={workdir}", "--", f"{workdir}/job.sbatch"])
    assert result.exit_code == 0, result.stderr
    job_id = result.stdout.strip()
    assert job_id.isdigit(), result.stdout
    return job_id


def wait_for_final_state(client: paramiko.SSHClient, job_id: str) -> list[str]:
    """Poll sacct every second until the job's record is final; returns JobID, JobName, State, ExitCode.

    A job that starts and ends within a second of its submission first reaches slurmdbd as its end
    record alone: for about two seconds sacct shows it in its final state under the placeholder
    name "allocation" (22.05), until the start record fills in the real name.
    """
    argv = ["sacct", "-X", "--parsable2", "--noheader", "-j", job_id, "--format=JobID,JobName,State,ExitCode"]
    deadline = time.monotonic() + JOB_TIMEOUT_S
    fields: list[str] = []
    while time.monotonic() < deadline:
        result = run(client, argv)
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        if lines:
            fields = lines[0].split("|")
            if fields[2].split()[0] in TERMINAL_STATES and fields[1] != "allocation":
                return fields
        time.sleep(1)
    pytest.fail(f"job {job_id} not finished after {JOB_TIMEOUT_S}s; last sacct row: {fields}")


def read_remote(client: paramiko.SSHClient, path: str) -> str:
    with client.open_sftp() as sftp, sftp.open(path, "r") as remote_file:
        return remote_file.read().decode()


def test_sshd_rejects_a_connection_without_the_pinned_host_key(cluster_facts: ClusterFacts, cluster_uid: int) -> None:
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(cluster_facts, host_keys={})


def test_remote_user_is_the_cluster_user(ssh: paramiko.SSHClient, cluster_uid: int) -> None:
    result = run(ssh, ["id", "-u"])

    assert result.exit_code == 0
    assert result.stdout.strip() == str(cluster_uid)


def test_valid_namd_job_completes_with_energies_in_its_log(ssh: paramiko.SSHClient, workdir: str) -> None:
    job_name = f"np-ci-ok-{uuid.uuid4().hex[:8]}"
    upload_job(ssh, workdir, config=VALID_CONFIG, job_name=job_name)

    job_id = submit(ssh, workdir)
    fields = wait_for_final_state(ssh, job_id)

    assert fields == [job_id, job_name, "COMPLETED", "0:0"]
    log = read_remote(ssh, f"{workdir}/job.log")
    assert [line for line in log.splitlines() if line.startswith("ENERGY:")] != []
    assert "WallClock:" in log


def test_namd_config_with_unknown_keyword_fails_the_job(ssh: paramiko.SSHClient, workdir: str) -> None:
    job_name = f"np-ci-bad-{uuid.uuid4().hex[:8]}"
    upload_job(ssh, workdir, config=VALID_CONFIG + "frobnicateFluxCapacitor yes\n", job_name=job_name)

    job_id = submit(ssh, workdir)
    fields = wait_for_final_state(ssh, job_id)

    assert fields[:3] == [job_id, job_name, "FAILED"]
    assert fields[3] == "1:0"
    assert "FATAL ERROR" in read_remote(ssh, f"{workdir}/job.log")
