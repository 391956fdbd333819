"""clusters.ssh.transfer against the real local cluster's sshd (127.0.0.1:2222), through one pooled connection.

Needs the cluster running (`scripts/localcluster/localcluster start`) and root (to add the test's cluster
user). Remote files stay under /scratch/np_ci_xfer/<test dir>, removed after each test.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusters.ssh import ConnectionPool, ConnectionSpec, RemoteCommandFailed, RemoteFileMissing, RemoteFileTooLarge
from clusters.ssh.errors import TransferCorrupted
from clusters.ssh.transfer import download, read_ranges, upload
from tests.local_cluster import cluster_facts, localcluster

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[2]
CLUSTER_USER = "np_ci_xfer"
IDENTITY = "test-transfer"
MIB = 2**20


@pytest.fixture(scope="module")
def spec() -> ConnectionSpec:
    facts = cluster_facts()
    localcluster("add-user", CLUSTER_USER)
    return ConnectionSpec(
        host=facts["LOCALCLUSTER_HOST"],
        port=int(facts["LOCALCLUSTER_PORT"]),
        username=CLUSTER_USER,
        pinned_host_keys=(Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]).read_text().strip(),),
        private_key=(Path(facts["LOCALCLUSTER_KEYS_DIR"]) / CLUSTER_USER).read_text(),
        connect_timeout_s=5.0,
        cluster_key=f"test-{uuid.uuid4().hex[:8]}",
    )


@pytest.fixture
def pool() -> Iterator[ConnectionPool]:
    pool = ConnectionPool()
    yield pool
    pool.close_all()


@pytest.fixture
def remote_dir(pool: ConnectionPool, spec: ConnectionSpec, request: pytest.FixtureRequest) -> Iterator[str]:
    path = f"/scratch/{CLUSTER_USER}/xfer-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
    pool.run(spec, ["mkdir", "-m", "700", "--", path], identity=IDENTITY, timeout_s=10, check=True)
    yield path
    pool.run(spec, ["rm", "-rf", "--", path], identity=IDENTITY, timeout_s=30, check=True)


def random_file(path: Path, size: int) -> str:
    """Write `size` random bytes to path; returns their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(16 * MIB, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


def remote_listing(pool: ConnectionPool, spec: ConnectionSpec, directory: str) -> list[str]:
    result = pool.run(spec, ["ls", "-A", "--", directory], identity=IDENTITY, timeout_s=10, check=True)
    return result.stdout.splitlines()


@pytest.mark.parametrize("size", [0, 1, 4097])
def test_small_and_empty_files_round_trip(
    pool: ConnectionPool, spec: ConnectionSpec, remote_dir: str, tmp_path: Path, size: int
) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(size))
    remote = f"{remote_dir}/file.bin"

    sent = upload(pool, spec, identity=IDENTITY, local_path=source, remote_path=remote)
    got = download(pool, spec, identity=IDENTITY, remote_path=remote, local_path=tmp_path / "out.bin")

    assert (sent.size_bytes, got.size_bytes) == (size, size)
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()
    assert remote_listing(pool, spec, remote_dir) == ["file.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin", "out.bin"]


def test_256_mib_round_trip_reports_monotonic_progress(
    pool: ConnectionPool, spec: ConnectionSpec, remote_dir: str, tmp_path: Path
) -> None:
    size = 256 * MIB
    source_hash = random_file(tmp_path / "in.bin", size)
    remote = f"{remote_dir}/big.bin"
    up_calls: list[tuple[int, int]] = []
    down_calls: list[tuple[int, int]] = []

    upload(
        pool,
        spec,
        identity=IDENTITY,
        local_path=tmp_path / "in.bin",
        remote_path=remote,
        progress=lambda done, total: up_calls.append((done, total)),
    )
    download(
        pool,
        spec,
        identity=IDENTITY,
        remote_path=remote,
        local_path=tmp_path / "out.bin",
        progress=lambda done, total: down_calls.append((done, total)),
    )

    for calls in (up_calls, down_calls):
        done = [d for d, _total in calls]
        assert done == sorted(done)
        assert {total for _done, total in calls} == {size}
        assert calls[-1] == (size, size)
    assert hashlib.sha256((tmp_path / "out.bin").read_bytes()).hexdigest() == source_hash


def test_1_5_gib_both_ways_on_one_connection_survives_rekeys(
    pool: ConnectionPool, spec: ConnectionSpec, remote_dir: str, tmp_path: Path
) -> None:
    # Past paramiko's 512 MiB re-key point several times in each direction, on one pooled connection:
    # the case that stalled with "Key-exchange timed out" (LOCAL_CLUSTER.md).
    size = 1536 * MIB
    source_hash = random_file(tmp_path / "in.bin", size)
    remote = f"{remote_dir}/huge.bin"

    sent = upload(pool, spec, identity=IDENTITY, local_path=tmp_path / "in.bin", remote_path=remote, verify_sha256=True)
    (tmp_path / "in.bin").unlink()
    got = download(
        pool, spec, identity=IDENTITY, remote_path=remote, local_path=tmp_path / "out.bin", verify_sha256=True
    )

    assert (sent.sha256, got.sha256) == (source_hash, source_hash)
    assert (tmp_path / "out.bin").stat().st_size == size
    assert pool.connects_opened == 1


def test_remote_path_with_spaces_and_quotes(
    pool: ConnectionPool, spec: ConnectionSpec, remote_dir: str, tmp_path: Path
) -> None:
    name = 'it\'s a "file" $(touch pwned) ; -x.txt'
    (tmp_path / "in.txt").write_bytes(b"hello\n")

    upload(pool, spec, identity=IDENTITY, local_path=tmp_path / "in.txt", remote_path=f"{remote_dir}/{name}")
    download(pool, spec, identity=IDENTITY, remote_path=f"{remote_dir}/{name}", local_path=tmp_path / "out.txt")

    assert remote_listing(pool, spec, remote_dir) == [name]
    assert (tmp_path / "out.txt").read_bytes() == b"hello\n"


def test_stale_longer_part_file_is_replaced_not_merged(
    pool: ConnectionPool, spec: ConnectionSpec, remote_dir: str, tmp_path: Path
) -> None:
    remote = f"{remote_dir}/data.bin"
    (tmp_path / "long.bin").write_bytes(b"x" * 10_000)
    (tmp_path / "short.bin").write_bytes(b"short")
    upload(pool, spec, identity=IDENTITY, local_path=tmp_path / "long.bin", remote_path=f"{remote}.part")

    upload(pool, spec, identity=IDENTITY, local_path=tmp_path / "short.bin", remote_path=remote)

    assert pool.run(spec, ["cat", "--", remote], identity=IDENTITY, timeout_s=10).stdout == "short"


def test_failed_upload_removes_its_part_file(
    pool: ConnectionPool, spec: ConnectionSpec, remote_dir: str, tmp_path: Path
) -> None:
    # `mv -T` refuses to replace a non-empty directory, so the upload fails after its data arrived.
    pool.run(spec, ["mkdir", "-p", "--", f"{remote_dir}/target/inner"], identity=IDENTITY, timeout_s=10, check=True)
    (tmp_path / "in.bin").write_bytes(b"data")

    with pytest.raises(RemoteCommandFailed) as caught:
        upload(pool, spec, identity=IDENTITY, local_path=tmp_path / "in.bin", remote_path=f"{remote_dir}/target")

    assert caught.value.result is not None
    assert caught.value.result.argv[0] == "mv"
    assert remote_listing(pool, spec, remote_dir) == ["target"]


def test_download_of_missing_file_fails_and_leaves_nothing_local(
    pool: ConnectionPool, spec: ConnectionSpec, remote_dir: str, tmp_path: Path
) -> None:
    with pytest.raises(RemoteFileMissing) as caught:
        download(pool, spec, identity=IDENTITY, remote_path=f"{remote_dir}/absent", local_path=tmp_path / "out")

    assert caught.value.code == "REMOTE_FILE_MISSING"
    assert caught.value.result.argv[0] == "stat"

    assert list(tmp_path.iterdir()) == []


def test_download_over_its_cap_is_refused_before_a_byte_moves(
    pool: ConnectionPool, spec: ConnectionSpec, remote_dir: str, tmp_path: Path
) -> None:
    # A sparse file: 5 TiB to stat, nothing on disk.
    sparse = f"{remote_dir}/huge.dcd"
    pool.run(spec, ["truncate", "-s", "5T", "--", sparse], identity=IDENTITY, timeout_s=10, check=True)

    with pytest.raises(RemoteFileTooLarge) as caught:
        download(pool, spec, identity=IDENTITY, remote_path=sparse, local_path=tmp_path / "out", max_bytes=MIB)

    assert (caught.value.code, caught.value.max_bytes) == ("REMOTE_FILE_TOO_LARGE", MIB)
    assert list(tmp_path.iterdir()) == []


def test_byte_ranges_of_a_remote_file_come_back_exactly_and_a_short_or_missing_one_fails(
    pool: ConnectionPool, spec: ConnectionSpec, remote_dir: str, tmp_path: Path
) -> None:
    local = tmp_path / "frames.bin"
    random_file(local, 3 * MIB + 5)
    upload(pool, spec, identity=IDENTITY, local_path=local, remote_path=f"{remote_dir}/frames.bin")
    data = local.read_bytes()
    ranges = [(0, 100), (MIB - 7, 2 * MIB), (3 * MIB + 5, 0), (3 * MIB, 5)]

    parts, result = read_ranges(pool, spec, identity=IDENTITY, remote_path=f"{remote_dir}/frames.bin", ranges=ranges)

    assert parts == [data[offset : offset + length] for offset, length in ranges]
    assert result.size_bytes == sum(length for _, length in ranges)
    with pytest.raises(TransferCorrupted):  # past the end: the frame is not there whole
        read_ranges(pool, spec, identity=IDENTITY, remote_path=f"{remote_dir}/frames.bin", ranges=[(3 * MIB, 10)])
    with pytest.raises(RemoteCommandFailed):
        read_ranges(pool, spec, identity=IDENTITY, remote_path=f"{remote_dir}/missing.bin", ranges=[(0, 10)])
