"""SSH costs on the local cluster: pooled vs fresh connections, batched vs per-job status, transfers vs scp.

Runs against `scripts/localcluster` (needs root to add the bench's cluster user). Everything it makes is
removed before it exits: the remote scratch directory, the local temp files and the held jobs
(`scancel --user`). Prints a table, then one JSON object as the last line; every `*_vs_*` ratio is
baseline time / portal time, so bigger is better for the portal.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.report import summarize, time_calls
from clusters.slurm import SlurmClient, chunk_job_ids
from clusters.ssh import CommandResult, ConnectionPool, ConnectionSpec
from clusters.ssh.transfer import download, upload

LOCALCLUSTER = Path(__file__).resolve().parents[1] / "scripts" / "localcluster" / "localcluster"
BENCH_USER = "np_bench"
IDENTITY = "bench"
JOBS = 500
FILE_BYTES = 256 * 2**20
TRANSFER_REPEAT = 3
SSH_TRUE_REPEAT = 100
FRESH_REPEAT = 20


def localcluster(*args: str) -> str:
    return subprocess.run([str(LOCALCLUSTER), *args], capture_output=True, text=True, timeout=300, check=True).stdout


def median_s(call: Callable[[], object], repeat: int) -> float:
    return statistics.median(time_calls(call, repeat=repeat, warmup=0))


def bench_connections(pool: ConnectionPool, spec: ConnectionSpec) -> dict[str, dict[str, float]]:
    def fresh() -> None:
        own = ConnectionPool()
        own.run(spec, ["true"], identity=IDENTITY, timeout_s=10, check=True)
        own.close_all()

    return {
        "true, pooled connection": summarize(
            time_calls(lambda: pool.run(spec, ["true"], identity=IDENTITY, timeout_s=10), repeat=SSH_TRUE_REPEAT)
        ),
        "true, fresh connection": summarize(time_calls(fresh, repeat=FRESH_REPEAT, warmup=2)),
    }


def bench_status(pool: ConnectionPool, spec: ConnectionSpec) -> dict[str, float]:
    def run_sequence(argvs: Sequence[Sequence[str]], timeout_s: float) -> list[CommandResult]:
        return pool.run_sequence(spec, [list(argv) for argv in argvs], identity=IDENTITY, timeout_s=timeout_s)

    def run(argv: Sequence[str], timeout_s: float) -> CommandResult:
        return pool.run(spec, list(argv), identity=IDENTITY, timeout_s=timeout_s)

    client = SlurmClient(run=run, run_sequence=run_sequence)
    sbatch = ["sbatch", "--hold", "--parsable", "--job-name=np-bench", "--wrap", "sleep 300"]
    started = time.perf_counter()
    try:
        job_ids = [
            pool.run(spec, sbatch, identity=IDENTITY, timeout_s=30, check=True).stdout.strip() for _ in range(JOBS)
        ]
        submit_s = time.perf_counter() - started
        batched_s = median_s(lambda: client.statuses(job_ids), repeat=3)
        statuses = client.statuses(job_ids)
        assert len(statuses) == JOBS, f"batched status saw {len(statuses)} of {JOBS} jobs"
        # squeue alone for all jobs in one exec, against squeue alone per job (below).
        squeue_chunks = [
            ["squeue", "-h", "-o", "%i|%T", "-j", ",".join(chunk)] for chunk in chunk_job_ids(job_ids, size=200)
        ]
        squeue_only_s = median_s(
            lambda: pool.run_sequence(spec, squeue_chunks, identity=IDENTITY, timeout_s=30, check=True), repeat=3
        )
        # Baseline: the same question (SlurmClient.statuses: squeue and sacct) asked once per job.
        started = time.perf_counter()
        for job_id in job_ids:
            client.statuses([job_id])
        loop_s = time.perf_counter() - started
        started = time.perf_counter()
        for job_id in job_ids:
            pool.run(spec, ["squeue", "-h", "-j", job_id, "-o", "%i|%T"], identity=IDENTITY, timeout_s=10, check=True)
        squeue_loop_s = time.perf_counter() - started
    finally:
        pool.run(spec, ["scancel", f"--user={BENCH_USER}"], identity=IDENTITY, timeout_s=60, check=True)
    return {
        "submit_500_s": submit_s,
        "batched_500_s": batched_s,
        "squeue_only_500_s": squeue_only_s,
        "loop_500_s": loop_s,
        "squeue_loop_500_s": squeue_loop_s,
    }


def bench_transfers(pool: ConnectionPool, spec: ConnectionSpec, host_key_line: str, key_path: Path) -> dict[str, float]:
    remote_dir = f"/scratch/{BENCH_USER}/bench-{uuid.uuid4().hex[:8]}"
    pool.run(spec, ["mkdir", "-m", "700", "--", remote_dir], identity=IDENTITY, timeout_s=10, check=True)
    try:
        with tempfile.TemporaryDirectory(prefix="np-bench-") as tmp:
            local = Path(tmp) / "data.bin"
            with open(local, "wb") as out, open("/dev/urandom", "rb") as random_source:
                for _ in range(FILE_BYTES // 2**24):
                    out.write(random_source.read(2**24))
            known_hosts = Path(tmp) / "known_hosts"
            known_hosts.write_text(f"[{spec.host}]:{spec.port} {host_key_line}\n")
            scp = [
                "scp",
                "-q",
                "-i",
                str(key_path),
                "-P",
                str(spec.port),
                "-o",
                f"UserKnownHostsFile={known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
            ]
            # OpenSSH 9 scp speaks SFTP: the remote path is not parsed by a shell (and holds only hex here).
            remote_scp = f"{BENCH_USER}@{spec.host}:{remote_dir}"
            samples: dict[str, list[float]] = {"upload": [], "download": [], "scp_up": [], "scp_down": []}
            for _ in range(TRANSFER_REPEAT):
                # Alternate portal and scp so that a noisy neighbour hurts both alike.
                samples["upload"].append(
                    timed(
                        lambda: upload(pool, spec, identity=IDENTITY, local_path=local, remote_path=f"{remote_dir}/p")
                    )
                )
                samples["scp_up"].append(
                    timed(lambda: subprocess.run([*scp, str(local), f"{remote_scp}/s"], check=True))
                )
                samples["download"].append(
                    timed(
                        lambda: download(
                            pool, spec, identity=IDENTITY, remote_path=f"{remote_dir}/p", local_path=f"{tmp}/p"
                        )
                    )
                )
                samples["scp_down"].append(
                    timed(lambda: subprocess.run([*scp, f"{remote_scp}/s", f"{tmp}/s"], check=True))
                )
    finally:
        pool.run(spec, ["rm", "-rf", "--", remote_dir], identity=IDENTITY, timeout_s=60, check=True)
    return {name: statistics.median(values) for name, values in samples.items()}


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    facts = dict(line.split("=", 1) for line in localcluster("env").splitlines() if "=" in line)
    localcluster("add-user", BENCH_USER)
    key_path = Path(facts["LOCALCLUSTER_KEYS_DIR"]) / BENCH_USER
    host_key_line = " ".join(Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]).read_text().split()[:2])
    spec = ConnectionSpec(
        host=facts["LOCALCLUSTER_HOST"],
        port=int(facts["LOCALCLUSTER_PORT"]),
        username=BENCH_USER,
        pinned_host_keys=(host_key_line,),
        private_key=key_path.read_text(),
        cluster_key=f"bench-{uuid.uuid4().hex[:8]}",
    )
    pool = ConnectionPool()
    try:
        connections = bench_connections(pool, spec)
        status = bench_status(pool, spec)
        transfers = bench_transfers(pool, spec, host_key_line, key_path)
    finally:
        pool.close_all()

    pooled_ms = connections["true, pooled connection"]["median_ms"]
    fresh_ms = connections["true, fresh connection"]["median_ms"]
    mib = FILE_BYTES / 2**20
    rows = [
        ("true, pooled connection", pooled_ms, f"{SSH_TRUE_REPEAT} calls"),
        ("true, fresh connection", fresh_ms, f"{FRESH_REPEAT} calls"),
        (f"submit {JOBS} held jobs, one sbatch each", status["submit_500_s"] * 1000, "once"),
        (f"status of {JOBS} jobs, SlurmClient.statuses, one exec", status["batched_500_s"] * 1000, "median of 3"),
        (f"status of {JOBS} jobs, squeue only, one exec", status["squeue_only_500_s"] * 1000, "median of 3"),
        (f"status of {JOBS} jobs, one statuses() call each", status["loop_500_s"] * 1000, "once"),
        (f"status of {JOBS} jobs, one squeue each", status["squeue_loop_500_s"] * 1000, "once"),
    ]
    for name, key in [
        ("upload, clusters.ssh.transfer", "upload"),
        ("upload, OpenSSH scp", "scp_up"),
        ("download, clusters.ssh.transfer", "download"),
        ("download, OpenSSH scp", "scp_down"),
    ]:
        rows.append(
            (f"{name} ({mib:.0f} MiB)", transfers[key] * 1000, f"{mib / transfers[key]:.0f} MiB/s, median of 3")
        )
    print("SSH transport on the local cluster (loopback)")
    print(f"{'case':<60}{'median ms':>12}  note")
    for name, value_ms, note in rows:
        print(f"{name:<60}{value_ms:>12.1f}  {note}")
    figures = {
        "bench": "transport",
        "pooled_vs_fresh": round(fresh_ms / pooled_ms, 2),
        "batched_vs_loop_500": round(status["loop_500_s"] / status["batched_500_s"], 2),
        "batched_squeue_only_vs_loop_500": round(status["squeue_loop_500_s"] / status["squeue_only_500_s"], 2),
        "squeue_only_status_500_ms": round(status["squeue_only_500_s"] * 1000, 3),
        "upload_vs_scp": round(transfers["scp_up"] / transfers["upload"], 3),
        "download_vs_scp": round(transfers["scp_down"] / transfers["download"], 3),
        "pooled_true_median_ms": round(pooled_ms, 3),
        "fresh_true_median_ms": round(fresh_ms, 3),
        "submit_500_s": round(status["submit_500_s"], 3),
        "batched_status_500_ms": round(status["batched_500_s"] * 1000, 3),
        "loop_status_500_ms": round(status["loop_500_s"] * 1000, 3),
        "upload_mib_s": round(mib / transfers["upload"], 1),
        "download_mib_s": round(mib / transfers["download"], 1),
        "scp_upload_mib_s": round(mib / transfers["scp_up"], 1),
        "scp_download_mib_s": round(mib / transfers["scp_down"], 1),
        "file_mib": mib,
    }
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
