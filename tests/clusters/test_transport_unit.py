"""clusters.ssh without sshd: session budget and breaker on the real Redis, keys, argv, redaction.

Redis db 15, every key under a prefix of this test run's own, deleted afterwards. Connect failures use
local sockets only (a closed port, a listener that never speaks).
"""

from __future__ import annotations

import logging
import random
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from clusters import ssh
from clusters.ssh import (
    AuthFailed,
    BreakerState,
    CircuitBreaker,
    ClusterDegraded,
    ConnectionPool,
    ConnectionSpec,
    HostKeyMismatch,
    KeyInvalid,
    KeyPassphraseWrong,
    RetryPolicy,
    SessionBudget,
    SessionBudgetExhausted,
    TransportTimeout,
    Unreachable,
    breaker_state,
    default_pool,
    fingerprint_sha256,
    load_private_key,
    redact_argv,
    validate_argv,
)
from clusters.ssh.keys import UnusableKey, check_private_key

HOST_KEY_PUB = Path("/var/lib/namd-portal/localcluster/ssh_host_ed25519_key.pub")
PASSPHRASE = "s3cr3t-PASSPHRASE-7f3a9c"
PASSWORD = "s3cr3t-PASSWORD-91bc44"


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_budget(redis_client: redis.Redis, key_prefix: str, clock: FakeClock, **kwargs: object) -> SessionBudget:
    options = {"per_minute_limit": 3, "max_wait_s": 5.0, "cluster_key": "c1"} | kwargs
    return SessionBudget(
        redis_client, key_prefix=key_prefix, clock=clock, sleep=clock.sleep, rng=random.Random(1), **options
    )


def make_breaker(redis_client: redis.Redis, key_prefix: str, clock: FakeClock, **kwargs: object) -> CircuitBreaker:
    options = {"failure_threshold": 3, "window_s": 60.0, "cooldown_s": 120.0, "trial_timeout_s": 30.0} | kwargs
    return CircuitBreaker(redis_client, key_prefix=key_prefix, clock=clock, **options)


def pinned_host_key() -> str:
    return HOST_KEY_PUB.read_text().strip()


def encrypted_ed25519_key(passphrase: str) -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()


# ------------------------------------------------------------------------------------ session budget


def test_budget_allows_the_limit_then_says_how_long_to_wait(redis_client, key_prefix, clock) -> None:
    budget = make_budget(redis_client, key_prefix, clock)

    waits = [budget.try_take() for _ in range(3)]
    clock.now += 10
    wait_s = budget.try_take()

    assert waits == [0.0, 0.0, 0.0]
    assert wait_s == pytest.approx(50.0, abs=0.01)


def test_budget_frees_a_session_once_it_leaves_the_window(redis_client, key_prefix, clock) -> None:
    budget = make_budget(redis_client, key_prefix, clock, per_minute_limit=1)
    assert budget.try_take() == 0.0

    clock.now += 60.001

    assert budget.try_take() == 0.0


def test_budget_is_shared_by_workers_and_separate_per_cluster(redis_client, key_prefix, clock) -> None:
    worker_a = make_budget(redis_client, key_prefix, clock, per_minute_limit=2)
    worker_b = make_budget(redis_client, key_prefix, clock, per_minute_limit=2)
    other_cluster = make_budget(redis_client, key_prefix, clock, per_minute_limit=2, cluster_key="c2")

    assert worker_a.try_take() == 0.0
    assert worker_b.try_take() == 0.0
    assert worker_a.try_take() > 0
    assert other_cluster.try_take() == 0.0


def test_budget_take_waits_with_jitter_for_a_freed_session(redis_client, key_prefix, clock) -> None:
    budget = make_budget(redis_client, key_prefix, clock, per_minute_limit=1, max_wait_s=5.0)
    budget.take()
    clock.now += 58

    budget.take()

    assert len(clock.slept) == 1
    assert 2.0 <= clock.slept[0] <= 2.5


def test_budget_take_gives_up_after_its_bound_with_a_transient_error(redis_client, key_prefix, clock) -> None:
    budget = make_budget(redis_client, key_prefix, clock, per_minute_limit=1, max_wait_s=5.0)
    budget.take()

    with pytest.raises(SessionBudgetExhausted) as excinfo:
        budget.take()

    assert excinfo.value.code == "SESSION_BUDGET_EXHAUSTED"
    assert excinfo.value.is_transient is True
    assert sum(clock.slept) == pytest.approx(5.0)


def test_budget_rejects_a_zero_limit(redis_client, key_prefix, clock) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        make_budget(redis_client, key_prefix, clock, per_minute_limit=0)


# ------------------------------------------------------------------------------------------- breaker


def test_breaker_opens_after_consecutive_failures_and_fails_fast(redis_client, key_prefix, clock) -> None:
    breaker = make_breaker(redis_client, key_prefix, clock)

    states = [breaker.record_failure("c1") for _ in range(3)]

    assert states == [BreakerState.CLOSED, BreakerState.CLOSED, BreakerState.OPEN]
    assert breaker_state(redis_client, "c1", key_prefix=key_prefix, clock=clock) is BreakerState.OPEN
    with pytest.raises(ClusterDegraded) as excinfo:
        breaker.before_connect("c1")
    assert excinfo.value.code == "CLUSTER_DEGRADED"
    assert excinfo.value.is_transient is True


def test_breaker_counts_only_failures_within_the_window(redis_client, key_prefix, clock) -> None:
    breaker = make_breaker(redis_client, key_prefix, clock)

    for _ in range(3):
        breaker.record_failure("c1")
        clock.now += 61

    assert breaker.state("c1") is BreakerState.CLOSED
    breaker.before_connect("c1")


def test_breaker_success_resets_the_count(redis_client, key_prefix, clock) -> None:
    breaker = make_breaker(redis_client, key_prefix, clock)
    breaker.record_failure("c1")
    breaker.record_failure("c1")

    breaker.record_success("c1")

    assert breaker.record_failure("c1") is BreakerState.CLOSED


def test_breaker_half_opens_after_cooldown_for_exactly_one_trial(redis_client, key_prefix, clock) -> None:
    breaker = make_breaker(redis_client, key_prefix, clock)
    other_worker = make_breaker(redis_client, key_prefix, clock)
    for _ in range(3):
        breaker.record_failure("c1")
    clock.now += 120

    assert breaker.state("c1") is BreakerState.HALF_OPEN
    breaker.before_connect("c1")
    with pytest.raises(ClusterDegraded):
        other_worker.before_connect("c1")


def test_breaker_trial_failure_reopens_and_success_closes(redis_client, key_prefix, clock) -> None:
    breaker = make_breaker(redis_client, key_prefix, clock)
    for _ in range(3):
        breaker.record_failure("c1")
    clock.now += 120
    breaker.before_connect("c1")

    assert breaker.record_failure("c1") is BreakerState.OPEN
    with pytest.raises(ClusterDegraded):
        breaker.before_connect("c1")

    clock.now += 120
    breaker.before_connect("c1")
    breaker.record_success("c1")
    assert breaker.state("c1") is BreakerState.CLOSED


def test_breaker_allows_a_new_trial_when_the_last_one_never_reported(redis_client, key_prefix, clock) -> None:
    breaker = make_breaker(redis_client, key_prefix, clock)
    for _ in range(3):
        breaker.record_failure("c1")
    clock.now += 120
    breaker.before_connect("c1")

    clock.now += 31

    breaker.before_connect("c1")


def test_breaker_state_of_an_unknown_cluster_is_closed(redis_client, key_prefix) -> None:
    assert breaker_state(redis_client, "never-seen", key_prefix=key_prefix) is BreakerState.CLOSED


# ------------------------------------------------------------------------------- pool without a server


def closed_port_spec(**kwargs: object) -> ConnectionSpec:
    options = {
        "host": "127.0.0.1",
        "port": 1,
        "username": "alice",
        "pinned_host_keys": (pinned_host_key(),),
        "private_key": encrypted_ed25519_key(PASSPHRASE),
        "passphrase": PASSPHRASE,
        "password": PASSWORD,
        "connect_timeout_s": 2.0,
        "cluster_key": "c1",
    } | kwargs
    return ConnectionSpec(**options)


def test_unreachable_is_retried_with_capped_backoff_then_raised(redis_client, key_prefix, clock) -> None:
    budget = make_budget(redis_client, key_prefix, clock, per_minute_limit=10)
    pool = ConnectionPool(
        budget_for=lambda cluster_key: budget,
        retry=RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=1.5),
        sleep=clock.sleep,
        rng=random.Random(7),
    )

    with pytest.raises(Unreachable) as excinfo:
        pool.run(closed_port_spec(), ["true"], identity="member:1", timeout_s=5)

    assert excinfo.value.code == "UNREACHABLE"
    assert excinfo.value.is_transient is True
    assert len(clock.slept) == 2
    assert 0 <= clock.slept[0] <= 1.0
    assert 0 <= clock.slept[1] <= 1.5
    assert redis_client.zcard(budget.redis_key) == 3
    assert pool.connects_opened == 0


def test_connect_failures_open_the_breaker_and_later_calls_fail_fast(redis_client, key_prefix, clock) -> None:
    budget = make_budget(redis_client, key_prefix, clock, per_minute_limit=10)
    breaker = make_breaker(redis_client, key_prefix, clock, failure_threshold=3)
    pool = ConnectionPool(
        budget_for=lambda cluster_key: budget,
        breaker=breaker,
        retry=RetryPolicy(max_attempts=3),
        sleep=clock.sleep,
    )
    with pytest.raises(Unreachable):
        pool.run(closed_port_spec(), ["true"], identity="member:1", timeout_s=5)

    with pytest.raises(ClusterDegraded):
        pool.run(closed_port_spec(), ["true"], identity="member:2", timeout_s=5)

    assert breaker.state("c1") is BreakerState.OPEN
    assert redis_client.zcard(budget.redis_key) == 3


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP listener that accepts and never sends an SSH banner."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_silent_server_is_a_retried_connect_timeout(silent_server) -> None:
    port, accepted = silent_server
    pool = ConnectionPool(retry=RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.01))

    with pytest.raises(TransportTimeout) as excinfo:
        pool.run(closed_port_spec(port=port, connect_timeout_s=0.5), ["true"], identity="member:1", timeout_s=5)

    assert excinfo.value.code == "TIMEOUT"
    assert excinfo.value.during_connect is True
    assert len(accepted) == 2


def test_a_wrong_passphrase_is_not_retried_and_costs_no_session(redis_client, key_prefix, clock) -> None:
    budget = make_budget(redis_client, key_prefix, clock)
    pool = ConnectionPool(budget_for=lambda cluster_key: budget, sleep=clock.sleep)

    with pytest.raises(KeyPassphraseWrong) as excinfo:
        pool.run(closed_port_spec(passphrase="not-it"), ["true"], identity="member:1", timeout_s=5)

    assert excinfo.value.code == "KEY_PASSPHRASE_WRONG"
    assert isinstance(excinfo.value, AuthFailed)
    assert clock.slept == []
    assert redis_client.zcard(budget.redis_key) == 0


@pytest.mark.parametrize(
    ("pins", "message"),
    [((), "no host key is pinned"), (("ssh-ed25519 !!!notbase64",), "unreadable"), (("garbage",), "unreadable")],
)
def test_unusable_pins_are_a_host_key_mismatch_before_any_connect(pins: tuple[str, ...], message: str) -> None:
    pool = ConnectionPool()

    with pytest.raises(HostKeyMismatch, match=message) as excinfo:
        pool.run(closed_port_spec(pinned_host_keys=pins), ["true"], identity="member:1", timeout_s=5)

    assert excinfo.value.code == "HOST_KEY_MISMATCH"


def test_two_pins_of_one_type_are_refused() -> None:
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    other_line = other.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    pool = ConnectionPool()

    with pytest.raises(HostKeyMismatch, match="one per type"):
        pool.run(closed_port_spec(pinned_host_keys=(pinned_host_key(), other_line)), ["x"], identity="m", timeout_s=5)


def test_a_spec_without_credentials_is_an_auth_failure() -> None:
    with pytest.raises(AuthFailed, match="neither"):
        ConnectionPool().run(
            closed_port_spec(private_key=None, password=None), ["true"], identity="member:1", timeout_s=5
        )


# ----------------------------------------------------------------------------------- secret redaction


def failures_with_secrets(silent_port: int) -> list[tuple[str, ConnectionSpec]]:
    return [
        ("KEY_PASSPHRASE_WRONG", closed_port_spec(passphrase=PASSPHRASE + "-wrong", password=PASSWORD)),
        ("UNREACHABLE", closed_port_spec()),
        ("TIMEOUT", closed_port_spec(port=silent_port, connect_timeout_s=0.3)),
        ("HOST_KEY_MISMATCH", closed_port_spec(pinned_host_keys=())),
    ]


def test_no_failure_shows_a_secret(silent_server, caplog: pytest.LogCaptureFixture) -> None:
    port, _accepted = silent_server
    caplog.set_level(logging.DEBUG)
    pool = ConnectionPool(retry=RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.01))

    for expected_code, spec in failures_with_secrets(port):
        with pytest.raises(ssh.TransportError) as excinfo:
            pool.run(spec, ["true"], identity="member:1", timeout_s=5)
        key_body = spec.private_key.splitlines()[2]
        texts = [str(excinfo.value), repr(excinfo.value), repr(spec), str(excinfo.value.__cause__), caplog.text]

        assert excinfo.value.code == expected_code
        for text in texts:
            assert PASSPHRASE not in text
            assert PASSWORD not in text
            assert key_body not in text
    assert "ssh.connect_failed" in caplog.text


# ---------------------------------------------------------------------------------------- private keys


def key_text(private_key: object, fmt: serialization.PrivateFormat, passphrase: str | None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    return private_key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()


@pytest.mark.parametrize(
    ("private_key", "fmt", "name"),
    [
        (ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH, "ssh-ed25519"),
        (ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.OpenSSH, "ecdsa-sha2-nistp256"),
        (
            ec.generate_private_key(ec.SECP256R1()),
            serialization.PrivateFormat.TraditionalOpenSSL,
            "ecdsa-sha2-nistp256",
        ),
        (rsa.generate_private_key(65537, 2048), serialization.PrivateFormat.OpenSSH, "ssh-rsa"),
        (rsa.generate_private_key(65537, 2048), serialization.PrivateFormat.TraditionalOpenSSL, "ssh-rsa"),
    ],
)
def test_keys_load_with_the_right_passphrase_and_name_a_wrong_one(private_key, fmt, name: str) -> None:
    text = key_text(private_key, fmt, PASSPHRASE)

    assert load_private_key(text, PASSPHRASE).get_name() == name
    with pytest.raises(KeyPassphraseWrong, match="does not open"):
        load_private_key(text, "wrong")
    with pytest.raises(KeyPassphraseWrong, match="no passphrase"):
        load_private_key(text, None)


def test_an_unencrypted_key_ignores_a_passphrase() -> None:
    text = key_text(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH, None)

    assert load_private_key(text, "unused").get_name() == "ssh-ed25519"


@pytest.mark.parametrize(
    "text", ["", "not a key", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"]
)
def test_garbage_is_an_invalid_key(text: str) -> None:
    with pytest.raises(KeyInvalid) as excinfo:
        load_private_key(text, None)

    assert excinfo.value.code == "KEY_INVALID"


# --------------------------------------------------------------------------------- argv and host keys


@pytest.mark.parametrize("argv", ["id -u", ("id", "-u"), ["id", 1], ["id", b"-u"], None])
def test_argv_must_be_a_list_of_str(argv: object) -> None:
    with pytest.raises(TypeError):
        validate_argv(argv)


@pytest.mark.parametrize("argv", [[], ["printf", "a\x00b"]])
def test_argv_must_be_non_empty_and_nul_free(argv: list[str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - two different messages
        validate_argv(argv)


def test_run_validates_argv_before_connecting() -> None:
    pool = ConnectionPool()

    with pytest.raises(TypeError):
        pool.run(closed_port_spec(), "id -u", identity="member:1", timeout_s=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pool.run_sequence(closed_port_spec(), [["id"], ("true",)], identity="member:1", timeout_s=5)


def test_run_needs_an_identity() -> None:
    with pytest.raises(ValueError, match="identity"):
        ConnectionPool().run(closed_port_spec(), ["id"], identity="", timeout_s=5)


def test_redacted_argv_hides_secret_options_and_trims() -> None:
    argv = ["tool", "--password=hunter2", "TOKEN=abc", "x" * 200, *[str(n) for n in range(20)]]

    shown = redact_argv(argv)

    assert shown[:3] == ["tool", "--password=***", "TOKEN=***"]
    assert shown[3] == "x" * 80 + "…"
    assert shown[-1] == "…(+12 args)"
    assert "hunter2" not in repr(shown)


def test_module_run_needs_an_installed_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(default_pool, "_default_pool", None)

    with pytest.raises(RuntimeError, match="install_default_pool"):
        default_pool.run(closed_port_spec(), ["id"], identity="member:1", timeout_s=5)


def test_fingerprint_matches_ssh_keygen() -> None:
    keygen = subprocess.run(["ssh-keygen", "-lf", str(HOST_KEY_PUB)], capture_output=True, text=True, check=True)

    assert fingerprint_sha256(pinned_host_key()) == keygen.stdout.split()[1]


def test_retry_delays_grow_exponentially_and_are_capped() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay_s=0.5, max_delay_s=3.0)
    rng = random.Random(3)

    delays = [[policy.delay_s(attempt, rng) for _ in range(200)] for attempt in range(1, 6)]

    assert [max(d) <= bound for d, bound in zip(delays, [0.5, 1.0, 2.0, 3.0, 3.0], strict=True)] == [True] * 5
    assert max(delays[2]) > 1.0


# Save time and connect time read keys with one reader: each save-time refusal has its connect-time error.
ONE_READER_CASES = [
    ("PROTECTED", None, "KEY_PASSPHRASE_REQUIRED", KeyPassphraseWrong),
    ("PROTECTED", "wrong", "KEY_PASSPHRASE_WRONG", KeyPassphraseWrong),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        "x",
        "KEY_FORMAT_INVALID",
        KeyInvalid,
    ),
    ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None, "KEY_FORMAT_INVALID", KeyInvalid),
]


@pytest.mark.parametrize(("text", "passphrase", "save_code", "connect_error"), ONE_READER_CASES)
def test_saving_and_connecting_read_a_key_alike(text, passphrase, save_code: str, connect_error: type) -> None:
    if text == "PROTECTED":
        text = encrypted_ed25519_key(PASSPHRASE)

    with pytest.raises(UnusableKey) as saving:
        check_private_key(text, passphrase)
    with pytest.raises(connect_error):
        load_private_key(text, passphrase)

    assert saving.value.code == save_code


def test_a_needless_passphrase_is_refused_when_saving_and_ignored_when_connecting() -> None:
    text = key_text(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH, None)

    with pytest.raises(UnusableKey) as saving:
        check_private_key(text, "unused")

    assert saving.value.code == "KEY_PASSPHRASE_UNEXPECTED"
    assert load_private_key(text, "unused").get_name() == "ssh-ed25519"
