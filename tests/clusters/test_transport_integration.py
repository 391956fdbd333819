"""clusters.ssh against the real local cluster's sshd (127.0.0.1:2222), as the portal connects.

Needs the cluster running (`scripts/localcluster/localcluster start`) and root: it creates its own
cluster user, adds a passphrase-protected key to that user's authorized_keys (removed afterwards) and
kills that user's server-side sshd process by pid to test reconnecting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from clusters.paths import check_remote_realpath, resolve_user_path
from clusters.ssh import (
    DEFAULT_MAX_OUTPUT_BYTES,
    AuthFailed,
    ConnectionPool,
    ConnectionSpec,
    HostKeyMismatch,
    KeyPassphraseWrong,
    RemoteCommandFailed,
    RemoteOutputTooLarge,
    RemotePathForbidden,
    RetryPolicy,
    SessionBudget,
    SessionBudgetExhausted,
    TransportError,
    TransportTimeout,
    Unreachable,
    fetch_host_key,
    fingerprint_sha256,
)
from tests.local_cluster import add_cluster_user, cluster_facts

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[2]
CLUSTER_USER = "np_ci_transport"
PASSPHRASE = "s3cr3t-PASSPHRASE-c0ffee"
PASSWORD = "s3cr3t-PASSWORD-d00d"


@dataclass(frozen=True)
class Cluster:
    host: str
    port: int
    host_key_line: str
    private_key: str
    uid: int


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    facts = cluster_facts()
    uid = add_cluster_user(CLUSTER_USER)
    return Cluster(
        host=facts["LOCALCLUSTER_HOST"],
        port=int(facts["LOCALCLUSTER_PORT"]),
        host_key_line=Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]).read_text().strip(),
        private_key=(Path(facts["LOCALCLUSTER_KEYS_DIR"]) / CLUSTER_USER).read_text(),
        uid=uid,
    )


@pytest.fixture
def spec(cluster: Cluster) -> ConnectionSpec:
    return ConnectionSpec(
        host=cluster.host,
        port=cluster.port,
        username=CLUSTER_USER,
        pinned_host_keys=(cluster.host_key_line,),
        private_key=cluster.private_key,
        connect_timeout_s=5.0,
        cluster_key=f"test-{uuid.uuid4().hex[:8]}",
    )


@pytest.fixture
def pool() -> Iterator[ConnectionPool]:
    pool = ConnectionPool(retry=RetryPolicy(max_attempts=2, base_delay_s=0.05, max_delay_s=0.1))
    yield pool
    pool.close_all()


@pytest.fixture
def scratch_dir(pool: ConnectionPool, spec: ConnectionSpec, request: pytest.FixtureRequest) -> Iterator[str]:
    path = f"/scratch/{CLUSTER_USER}/{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
    pool.run(spec, ["mkdir", "-m", "700", "--", path], identity="fixture", timeout_s=10, check=True)
    yield path
    pool.run(spec, ["rm", "-rf", "--", path], identity="fixture", timeout_s=10, check=True)


def public_key_line(private_key: ed25519.Ed25519PrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def openssh_private_text(private_key: ed25519.Ed25519PrivateKey, passphrase: str | None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    ).decode()


@pytest.fixture(scope="module")
def passphrase_key(cluster: Cluster) -> Iterator[str]:
    """A passphrase-protected key authorized for the cluster user (as root), removed afterwards."""
    private_key = ed25519.Ed25519PrivateKey.generate()
    line = public_key_line(private_key) + " np-transport-passphrase-test"
    authorized_keys = Path(f"/home/{CLUSTER_USER}/.ssh/authorized_keys")
    original = authorized_keys.read_text()
    authorized_keys.write_text(original + line + "\n")
    yield openssh_private_text(private_key, PASSPHRASE)
    authorized_keys.write_text(authorized_keys.read_text().replace(line + "\n", ""))


def server_sshd_pids(local_port: int) -> list[int]:
    """The sshd processes holding the server side of our one TCP connection (found by its port pair)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :2222 and dport = :{local_port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted({int(pid) for pid in re.findall(r"pid=(\d+)", out)})


# ------------------------------------------------------------------------------------------- basics


def test_id_runs_as_the_cluster_user(pool: ConnectionPool, spec: ConnectionSpec, cluster: Cluster) -> None:
    result = pool.run(spec, ["id", "-u"], identity="member:1", timeout_s=10)

    assert result.exit_code == 0
    assert result.stdout == f"{cluster.uid}\n"
    assert result.stderr == ""
    assert result.argv == ("id", "-u")
    assert 0 < result.duration_s < 10


def test_a_second_command_reuses_the_pooled_connection(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    pool.run(spec, ["true"], identity="member:1", timeout_s=10)
    with pool.leased_transport(spec, identity="member:1") as first_transport:
        assert first_transport.is_active() is True

    reuses_s = []
    for _ in range(5):
        started = time.monotonic()
        pool.run(spec, ["true"], identity="member:1", timeout_s=10)
        reuses_s.append(time.monotonic() - started)

    assert pool.connects_opened == 1
    with pool.leased_transport(spec, identity="member:1") as transport:
        assert transport is first_transport
    # TCP_NODELAY: an exec on an open connection takes a few ms, not the ~48 ms of Nagle's delay, which would
    # hold back every one of them (the quickest of five, so a busy machine's one slow run does not count).
    assert min(reuses_s) < 0.04


def test_another_identity_gets_its_own_connection(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    pool.run(spec, ["true"], identity="member:1", timeout_s=10)
    pool.run(spec, ["true"], identity="member:2", timeout_s=10)

    assert pool.connects_opened == 2
    assert len(pool) == 2


def test_concurrent_threads_share_one_connection(pool: ConnectionPool, spec: ConnectionSpec, cluster: Cluster) -> None:
    outputs: list[str] = []

    def work() -> None:
        outputs.append(pool.run(spec, ["id", "-u"], identity="member:1", timeout_s=20).stdout)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outputs == [f"{cluster.uid}\n"] * 12
    assert pool.connects_opened == 1


def test_many_quick_commands_in_parallel_never_drop_the_connection(
    pool: ConnectionPool, spec: ConnectionSpec, cluster: Cluster
) -> None:
    # A command that ends at once used to race our stdin EOF against the channel's close; when the EOF came
    # second, OpenSSH dropped the whole connection ("ieof packet referred to nonexistent channel", paramiko
    # #1705) and the commands of other threads on it failed. Without stdin, nothing is sent after the exec.
    failures: list[BaseException] = []

    def work() -> None:
        for _ in range(60):
            try:
                pool.run(spec, ["true"], identity="member:quick", timeout_s=20, check=True)
            except TransportError as exc:
                failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert pool.run(spec, ["cat"], identity="member:quick", timeout_s=10).exit_code == 0  # stdin is at its end


def test_arguments_arrive_verbatim(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    args = ["a b", "$(id)", ";rm", "`id`", 'it\'s "q"', "*", "~", "", "x\ny", "$HOME", "a|b&c>d", "-n"]

    result = pool.run(spec, ["printf", "%s\\n", *args], identity="member:1", timeout_s=10)

    assert result.stdout == "".join(f"{arg}\n" for arg in args)


def test_a_non_zero_exit_is_returned_or_raised_with_check(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    result = pool.run(spec, ["ls", "--", "/nonexistent-np"], identity="member:1", timeout_s=10)
    assert result.exit_code == 2
    assert "No such file" in result.stderr

    with pytest.raises(RemoteCommandFailed) as excinfo:
        pool.run(spec, ["ls", "--", "/nonexistent-np"], identity="member:1", timeout_s=10, check=True)

    assert excinfo.value.code == "REMOTE_COMMAND_FAILED"
    assert excinfo.value.result.exit_code == 2


def test_twenty_megabytes_of_stdout_arrive_whole_when_the_caller_allows_them(
    pool: ConnectionPool, spec: ConnectionSpec
) -> None:
    result = pool.run(
        spec, ["head", "-c", "20000000", "/dev/zero"], identity="member:1", timeout_s=30, max_output_bytes=20_000_000
    )

    assert result.exit_code == 0
    assert len(result.stdout) == 20_000_000


def test_large_stderr_before_stdout_does_not_deadlock(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    script = "import sys; sys.stderr.write('e' * 6_000_000); sys.stderr.flush(); sys.stdout.write('o' * 6_000_000)"

    result = pool.run(
        spec, ["/usr/bin/python3", "-c", script], identity="member:1", timeout_s=30, max_output_bytes=12_000_000
    )

    assert (len(result.stdout), len(result.stderr)) == (6_000_000, 6_000_000)


def _stopped_within(pool: ConnectionPool, spec: ConnectionSpec, pgrep: list[str], *, seconds: float):
    """`pgrep`'s last answer once it finds nothing, or after `seconds` (a signal is delivered asynchronously)."""
    deadline = time.monotonic() + seconds
    while True:
        found = pool.run(spec, pgrep, identity="member:1", timeout_s=10)
        if found.exit_code != 0 or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_output_past_the_cap_stops_the_command_and_keeps_the_connection(
    pool: ConnectionPool, spec: ConnectionSpec, scratch_dir: str
) -> None:
    link = f"{scratch_dir}/out.xsc"
    pool.run(spec, ["ln", "-s", "/dev/zero", link], identity="member:1", timeout_s=10, check=True)
    opened = pool.connects_opened

    with pytest.raises(RemoteOutputTooLarge) as excinfo:
        pool.run(spec, ["cat", "--", link], identity="member:1", timeout_s=30)
    with pytest.raises(RemoteOutputTooLarge):
        pool.run_sequence(spec, [["true"], ["cat", link]], identity="member:1", timeout_s=30, max_output_bytes=1000)
    exact = pool.run(spec, ["head", "-c", "1000", "--", link], identity="member:1", timeout_s=10, max_output_bytes=1000)
    leftover = _stopped_within(pool, spec, ["pgrep", "-u", CLUSTER_USER, "-x", "cat"], seconds=10)

    assert excinfo.value.code == "REMOTE_OUTPUT_TOO_LARGE"
    assert excinfo.value.max_bytes == DEFAULT_MAX_OUTPUT_BYTES
    assert len(exact.stdout) == 1000  # up to the cap is fine
    assert pool.connects_opened == opened
    assert leftover.exit_code == 1  # the cat was stopped, not left writing into a closed channel


def test_stdin_is_delivered_and_an_early_exit_does_not_hang(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    data = bytes(range(256)) * 12_000

    echoed = pool.run(spec, ["sha256sum"], identity="member:1", stdin=data, timeout_s=20)
    early = pool.run(spec, ["head", "-c", "5"], identity="member:1", stdin=b"x" * 5_000_000, timeout_s=20)

    assert echoed.stdout.split()[0] == hashlib.sha256(data).hexdigest()
    assert early.stdout == "xxxxx"


def test_invalid_utf8_is_replaced(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    result = pool.run(spec, ["printf", "a\\377b"], identity="member:1", timeout_s=10)

    assert result.stdout == "a\ufffdb"


# ------------------------------------------------------------------------------------------ timeouts


def test_a_command_timeout_is_quick_and_leaves_the_connection_usable(
    pool: ConnectionPool, spec: ConnectionSpec
) -> None:
    marker_seconds = f"{random.randint(300, 399)}.{random.randint(100, 999)}"
    started = time.monotonic()

    with pytest.raises(TransportTimeout) as excinfo:
        pool.run(spec, ["sleep", marker_seconds], identity="member:1", timeout_s=1)
    elapsed_s = time.monotonic() - started
    leftover = _stopped_within(pool, spec, ["pgrep", "-u", CLUSTER_USER, "-f", f"^sleep {marker_seconds}$"], seconds=10)

    assert excinfo.value.code == "TIMEOUT"
    assert excinfo.value.during_connect is False
    assert elapsed_s < 2
    assert pool.connects_opened == 1
    # The timed-out command got SIGTERM rather than being left running on the login node.
    assert leftover.exit_code == 1


# ------------------------------------------------------------------------------------------ reconnect


def test_reconnects_after_the_server_side_session_is_killed(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    pool.run(spec, ["true"], identity="member:1", timeout_s=10)
    with pool.leased_transport(spec, identity="member:1") as transport:
        local_port = transport.sock.getsockname()[1]
    pids = server_sshd_pids(local_port)
    assert pids != []

    subprocess.run(["kill", "--", *map(str, pids)], check=True)
    result = pool.run(spec, ["echo", "back"], identity="member:1", timeout_s=10)

    assert result.stdout == "back\n"
    assert pool.connects_opened == 2


def test_reconnects_when_a_channel_cannot_be_opened(
    pool: ConnectionPool, spec: ConnectionSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool.run(spec, ["true"], identity="member:1", timeout_s=10)
    with pool.leased_transport(spec, identity="member:1") as dead:
        dead.close()
    # The keepalive has not noticed yet: the transport still claims to be active.
    monkeypatch.setattr(dead, "is_active", lambda: True)

    result = pool.run(spec, ["echo", "back"], identity="member:1", timeout_s=10)

    assert result.stdout == "back\n"
    assert pool.connects_opened == 2
    with pool.leased_transport(spec, identity="member:1") as transport:
        assert transport is not dead


def test_idle_connections_are_closed(spec: ConnectionSpec) -> None:
    now = [0.0]
    pool = ConnectionPool(idle_close_s=60, monotonic=lambda: now[0])
    try:
        pool.run(spec, ["true"], identity="member:1", timeout_s=10)
        with pool.leased_transport(spec, identity="member:1") as transport:
            assert transport.is_active() is True
        now[0] = 59.0
        assert pool.close_idle() == 0

        now[0] = 61.0
        assert pool.close_idle() == 1
        assert transport.is_active() is False

        pool.run(spec, ["true"], identity="member:1", timeout_s=10)
        assert pool.connects_opened == 2
    finally:
        pool.close_all()


# ------------------------------------------------------------------------------------------ sequence


def test_run_sequence_splits_output_and_exit_codes_per_part(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    parts = pool.run_sequence(
        spec,
        [["printf", "%s", "no newline"], ["ls", "--", "/nonexistent-np"], ["printf", "%s\\n", "NP_PART_fake 0", "x"]],
        identity="member:1",
        timeout_s=10,
    )

    assert [part.exit_code for part in parts] == [0, 2, 0]
    assert [part.stdout for part in parts] == ["no newline", "", "NP_PART_fake 0\nx\n"]
    assert parts[0].stderr == ""
    assert "No such file" in parts[1].stderr
    assert parts[1].argv == ("ls", "--", "/nonexistent-np")
    assert pool.connects_opened == 1


def test_run_sequence_runs_squeue_and_sacct_in_one_exec(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    squeue, sacct = pool.run_sequence(
        spec,
        [
            ["squeue", "--me", "-h", "-o", "%i|%T"],
            ["sacct", "-X", "--parsable2", "--noheader", "-j", "1", "--format=JobID,State"],
        ],
        identity="member:1",
        timeout_s=20,
    )

    assert (squeue.exit_code, sacct.exit_code) == (0, 0)
    assert squeue.argv[0] == "squeue"
    assert sacct.argv[0] == "sacct"


def test_run_sequence_check_raises_for_the_first_failing_part(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    with pytest.raises(RemoteCommandFailed) as excinfo:
        pool.run_sequence(
            spec, [["true"], ["false"], ["ls", "/nonexistent-np"]], identity="m", timeout_s=10, check=True
        )

    assert excinfo.value.result.argv == ("false",)
    assert excinfo.value.result.exit_code == 1


# ------------------------------------------------------------------------------------- auth, host keys


def test_a_key_not_authorized_is_auth_failed(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    stranger = openssh_private_text(ed25519.Ed25519PrivateKey.generate(), None)

    with pytest.raises(AuthFailed) as excinfo:
        pool.run(replace(spec, private_key=stranger), ["true"], identity="member:1", timeout_s=10)

    assert excinfo.value.code == "AUTH_FAILED"
    assert excinfo.value.is_transient is False


def test_password_auth_is_refused_by_this_sshd(
    pool: ConnectionPool, spec: ConnectionSpec, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password_spec = replace(spec, private_key=None, password=PASSWORD)

    with pytest.raises(AuthFailed) as excinfo:
        pool.run(password_spec, ["true"], identity="member:1", timeout_s=10)

    assert excinfo.value.code == "AUTH_FAILED"
    for text in (str(excinfo.value), repr(excinfo.value), repr(password_spec), caplog.text):
        assert PASSWORD not in text


def test_a_passphrase_protected_key_works_with_its_passphrase(
    pool: ConnectionPool, spec: ConnectionSpec, passphrase_key: str, cluster: Cluster
) -> None:
    result = pool.run(
        replace(spec, private_key=passphrase_key, passphrase=PASSPHRASE), ["id", "-u"], identity="m", timeout_s=10
    )

    assert result.stdout == f"{cluster.uid}\n"


@pytest.mark.parametrize("passphrase", ["wrong", None])
def test_a_wrong_or_missing_passphrase_is_named(
    pool: ConnectionPool,
    spec: ConnectionSpec,
    passphrase_key: str,
    passphrase: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    with pytest.raises(KeyPassphraseWrong) as excinfo:
        pool.run(replace(spec, private_key=passphrase_key, passphrase=passphrase), ["true"], identity="m", timeout_s=10)

    assert excinfo.value.code == "KEY_PASSPHRASE_WRONG"
    assert PASSPHRASE not in caplog.text + str(excinfo.value) + repr(excinfo.value)
    assert pool.connects_opened == 0


def test_a_different_pinned_key_is_a_host_key_mismatch(
    pool: ConnectionPool, spec: ConnectionSpec, passphrase_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    impostor = public_key_line(ed25519.Ed25519PrivateKey.generate())
    mismatched = replace(spec, pinned_host_keys=(impostor,), private_key=passphrase_key, passphrase=PASSPHRASE)

    with pytest.raises(HostKeyMismatch) as excinfo:
        pool.run(mismatched, ["true"], identity="member:1", timeout_s=10)

    assert excinfo.value.code == "HOST_KEY_MISMATCH"
    assert fingerprint_sha256(spec.pinned_host_keys[0]) in str(excinfo.value)
    for text in (str(excinfo.value), repr(excinfo.value), repr(mismatched), caplog.text):
        assert PASSPHRASE not in text


def test_a_pinned_key_of_another_type_is_a_host_key_mismatch(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    ecdsa_line = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )

    with pytest.raises(HostKeyMismatch):
        pool.run(replace(spec, pinned_host_keys=(ecdsa_line,)), ["true"], identity="member:1", timeout_s=10)


def test_a_pooled_connection_is_dropped_when_its_pins_change(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    pool.run(spec, ["true"], identity="member:1", timeout_s=10)
    assert pool.connects_opened == 1
    impostor = public_key_line(ed25519.Ed25519PrivateKey.generate())

    # The pins no longer hold the server's key: the open connection must not be reused past them.
    with pytest.raises(HostKeyMismatch):
        pool.run(replace(spec, pinned_host_keys=(impostor,)), ["true"], identity="member:1", timeout_s=10)
    assert len(pool) == 0

    pool.run(spec, ["true"], identity="member:1", timeout_s=10)
    assert pool.connects_opened == 2


def test_a_closed_port_is_unreachable(pool: ConnectionPool, spec: ConnectionSpec) -> None:
    with pytest.raises(Unreachable) as excinfo:
        pool.run(replace(spec, port=1), ["true"], identity="member:1", timeout_s=10)

    assert excinfo.value.code == "UNREACHABLE"


def test_fetch_host_key_returns_the_key_to_pin(cluster: Cluster) -> None:
    line = fetch_host_key(cluster.host, cluster.port, timeout_s=5)

    assert line.split()[:2] == cluster.host_key_line.split()[:2]
    assert fingerprint_sha256(line) == fingerprint_sha256(cluster.host_key_line)


def test_fetch_host_key_of_a_closed_port_is_unreachable() -> None:
    with pytest.raises(Unreachable):
        fetch_host_key("127.0.0.1", 1, timeout_s=2)


# --------------------------------------------------------------------------------- budget in the pool


def test_only_new_sessions_cost_budget(spec: ConnectionSpec, redis_client: redis.Redis, key_prefix: str) -> None:
    budget = SessionBudget(redis_client, spec.resolved_cluster_key, 2, max_wait_s=0.2, key_prefix=key_prefix)
    pool = ConnectionPool(budget_for=lambda cluster_key: budget if cluster_key == spec.resolved_cluster_key else None)
    try:
        for _ in range(3):
            pool.run(spec, ["true"], identity="member:1", timeout_s=10)
        pool.run(spec, ["true"], identity="member:2", timeout_s=10)

        with pytest.raises(SessionBudgetExhausted):
            pool.run(spec, ["true"], identity="member:3", timeout_s=10)
        assert redis_client.zcard(budget.redis_key) == 2
        pool.run(spec, ["true"], identity="member:1", timeout_s=10)
    finally:
        pool.close_all()


def test_an_auth_failure_is_not_retried(spec: ConnectionSpec, redis_client: redis.Redis, key_prefix: str) -> None:
    budget = SessionBudget(redis_client, spec.resolved_cluster_key, 10, key_prefix=key_prefix)
    pool = ConnectionPool(budget_for=lambda cluster_key: budget, retry=RetryPolicy(max_attempts=5))
    stranger = openssh_private_text(ed25519.Ed25519PrivateKey.generate(), None)

    with pytest.raises(AuthFailed):
        pool.run(replace(spec, private_key=stranger), ["true"], identity="member:1", timeout_s=10)

    assert redis_client.zcard(budget.redis_key) == 1


# ----------------------------------------------------------------------------------------- realpath


def test_realpath_check_catches_a_symlink_out_of_scratch(
    pool: ConnectionPool, spec: ConnectionSpec, scratch_dir: str
) -> None:
    roots = [PurePosixPath(f"/scratch/{CLUSTER_USER}")]
    relpath = str(PurePosixPath(scratch_dir).relative_to(roots[0]))
    link = resolve_user_path(roots, f"{relpath}/escape")
    pool.run(spec, ["ln", "-s", "--", "/etc", str(link)], identity="member:1", timeout_s=10, check=True)

    def runner(argv: list[str]):
        return pool.run(spec, argv, identity="member:1", timeout_s=10)

    inside = check_remote_realpath(runner, roots, resolve_user_path(roots, f"{relpath}/new/file.namd"))
    with pytest.raises(RemotePathForbidden):
        check_remote_realpath(runner, roots, resolve_user_path(roots, f"{relpath}/escape/passwd"))

    assert inside == PurePosixPath(scratch_dir) / "new" / "file.namd"


def test_realpath_check_accepts_a_root_that_is_itself_a_symlink(
    pool: ConnectionPool, spec: ConnectionSpec, scratch_dir: str
) -> None:
    pool.run(spec, ["mkdir", "--", f"{scratch_dir}/real"], identity="member:1", timeout_s=10, check=True)
    pool.run(spec, ["ln", "-s", "--", f"{scratch_dir}/real", f"{scratch_dir}/root"], identity="m", timeout_s=10)
    roots = [PurePosixPath(f"{scratch_dir}/root")]

    def runner(argv: list[str]):
        return pool.run(spec, argv, identity="member:1", timeout_s=10)

    resolved = check_remote_realpath(runner, roots, resolve_user_path(roots, "out/x.dcd"))

    assert resolved == PurePosixPath(f"{scratch_dir}/real/out/x.dcd")


def test_a_members_concurrent_sessions_are_capped_by_the_spec(spec: ConnectionSpec) -> None:
    def elapsed_for(max_channels: int) -> float:
        pool = ConnectionPool()
        capped = dataclasses.replace(spec, max_channels=max_channels)
        threads = [
            threading.Thread(
                target=pool.run, args=(capped, ["sleep", "1"]), kwargs={"identity": "cap", "timeout_s": 10}
            )
            for _ in range(2)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pool.close_all()
        return time.monotonic() - started

    assert elapsed_for(1) >= 1.9
    assert elapsed_for(2) < 1.9
