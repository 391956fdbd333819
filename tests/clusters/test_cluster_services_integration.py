"""Cluster work done for members through the gateway, against the real local cluster over real sshd."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clusters.gateway import MemberSession
from clusters.models import ClusterCredential, ClusterProfile, LaunchRecipe, Partition, RemoteCommandRecord
from clusters.services import (
    accept_pending_host_key,
    check_credential_connection,
    discover_partitions,
    fetch_first_contact_host_key,
    save_key_credential,
)
from clusters.ssh.keys import generate_ed25519_key
from jobs.remote import member_session
from templates_app.builtin import load_builtin_templates
from tests.factories import ClusterProfileFactory, UserFactory
from tests.jobs.unit_jobs import new_job
from tests.local_cluster import add_cluster_user, cluster_facts, host_key_line

pytestmark = pytest.mark.integration

CLUSTER_USER = "np_ci_alice"


@pytest.fixture(scope="session")
def local_facts() -> dict[str, str]:
    add_cluster_user(CLUSTER_USER)
    return cluster_facts()


@pytest.fixture
def local_profile(db, local_facts) -> ClusterProfile:
    return ClusterProfileFactory(
        slug="local",
        name="Local",
        login_host=local_facts["LOCALCLUSTER_HOST"],
        login_port=int(local_facts["LOCALCLUSTER_PORT"]),
        pinned_host_keys=host_key_line(local_facts),
    )


@pytest.fixture
def cluster_member(db, local_facts, local_profile):
    user = UserFactory(username="member_on_cluster")
    key = (Path(local_facts["LOCALCLUSTER_KEYS_DIR"]) / CLUSTER_USER).read_text()
    credential = save_key_credential(
        user=user, profile=local_profile, remote_username=CLUSTER_USER, private_key=key, passphrase=None
    )
    return user, credential


def test_a_connection_test_passes_and_every_command_is_recorded(cluster_member) -> None:
    user, credential = cluster_member
    report = check_credential_connection(credential_id=credential.pk, acting_user_id=user.pk)
    assert (report.is_ok, report.code) == (True, "OK")
    assert CLUSTER_USER in report.summary
    credential.refresh_from_db()
    assert credential.last_test_ok is True
    records = list(RemoteCommandRecord.objects.filter(user=user).order_by("started_at"))
    assert [record.argv for record in records] == [
        ["id", "-un"],
        ["command", "-v", "sbatch", "squeue", "sacct", "scancel"],
    ]
    assert [record.exit_code for record in records] == [0, 0]
    assert all(record.error_code == "" and record.bytes_received > 0 for record in records)


def test_a_wrong_pinned_host_key_is_a_hard_error(cluster_member, local_profile) -> None:
    user, credential = cluster_member
    fake = generate_ed25519_key(comment="", passphrase=None).public_key  # a valid key, not the server's
    ClusterProfile.objects.filter(pk=local_profile.pk).update(pinned_host_keys=fake)
    report = check_credential_connection(credential_id=credential.pk, acting_user_id=user.pk)
    assert (report.is_ok, report.code) == (False, "HOST_KEY_MISMATCH")
    record = RemoteCommandRecord.objects.get(user=user)
    assert (record.exit_code, record.error_code) == (None, "HOST_KEY_MISMATCH")


def test_an_unreachable_login_node_is_reported_as_such(cluster_member, local_profile) -> None:
    user, credential = cluster_member
    ClusterProfile.objects.filter(pk=local_profile.pk).update(login_port=1)
    report = check_credential_connection(credential_id=credential.pk, acting_user_id=user.pk)
    assert (report.is_ok, report.code) == (False, "UNREACHABLE")


def test_a_key_the_cluster_does_not_know_fails_authentication(db, local_profile) -> None:
    from clusters.services import generate_key_credential

    user = UserFactory(username="stranger")
    credential = generate_key_credential(
        user=user, profile=local_profile, remote_username=CLUSTER_USER, passphrase=None
    )
    report = check_credential_connection(credential_id=credential.pk, acting_user_id=user.pk)
    assert (report.is_ok, report.code) == (False, "AUTH_FAILED")


def test_first_contact_fetches_the_real_host_key_for_an_admin_to_accept(db, local_facts) -> None:
    profile = ClusterProfileFactory(
        slug="new", login_host=local_facts["LOCALCLUSTER_HOST"], login_port=int(local_facts["LOCALCLUSTER_PORT"])
    )
    fetched = fetch_first_contact_host_key(profile_id=profile.pk)
    assert fetched.split()[:2] == host_key_line(local_facts).split()
    profile.refresh_from_db()
    assert profile.pinned_host_key_lines == ()
    accept_pending_host_key(profile=profile, user=UserFactory(username="root_t", is_superuser=True))
    profile.refresh_from_db()
    assert profile.pinned_host_key_lines == (fetched,)
    assert profile.pending_host_key == ""


def test_discover_partitions_reads_the_clusters_own_limits(db, local_facts, local_profile) -> None:
    admin = UserFactory(username="admin_on_cluster", is_staff=True)
    key = (Path(local_facts["LOCALCLUSTER_KEYS_DIR"]) / CLUSTER_USER).read_text()
    save_key_credential(
        user=admin, profile=local_profile, remote_username=CLUSTER_USER, private_key=key, passphrase=None
    )
    discover_partitions(profile_id=local_profile.pk, acting_user_id=admin.pk)
    found = {p.name: (p.is_default, p.max_walltime_s, p.cores_per_node) for p in local_profile.partitions.all()}
    assert found["normal"][:2] == (True, None)
    assert found["debug"][:2] == (False, 3600)
    assert found["debug"][2] >= 1


def test_slurm_status_through_a_member_session_is_one_exec_and_recorded(cluster_member) -> None:
    user, credential = cluster_member
    statuses = MemberSession(credential).slurm().statuses(["999999"])
    assert statuses == {}
    records = RemoteCommandRecord.objects.filter(user=user).order_by("pk")
    assert [record.argv[0] for record in records] == ["squeue", "sacct"]  # one exec, a record per part


def test_a_command_for_a_job_is_recorded_with_its_job(cluster_member, local_profile) -> None:
    user, _credential = cluster_member
    Partition.objects.create(profile=local_profile, name="debug", is_default=True, cores_per_node=1)
    LaunchRecipe.objects.create(profile=local_profile, name="cpu", kind="cpu", command="namd2 {config}")
    load_builtin_templates()
    job = new_job(user, local_profile)

    result = member_session(job, acting_user_id=job.owner_id, task_id="task-it").run(["id", "-un"])

    assert result.stdout == f"{CLUSTER_USER}\n"
    (record,) = RemoteCommandRecord.objects.filter(user=user)
    assert (record.argv, record.job_id, record.acting_user_id, record.task_id) == (
        ["id", "-un"],
        job.pk,
        user.pk,
        "task-it",
    )


@pytest.mark.django_db(transaction=True)
def test_the_api_queues_a_connection_test_that_a_real_worker_runs(client, celery_worker, local_facts) -> None:
    profile = ClusterProfileFactory(
        slug="local-api",
        login_host=local_facts["LOCALCLUSTER_HOST"],
        login_port=int(local_facts["LOCALCLUSTER_PORT"]),
        pinned_host_keys=host_key_line(local_facts),
    )
    user = UserFactory(username="api_member")
    key = (Path(local_facts["LOCALCLUSTER_KEYS_DIR"]) / CLUSTER_USER).read_text()
    save_key_credential(user=user, profile=profile, remote_username=CLUSTER_USER, private_key=key, passphrase=None)
    client.force_login(user)
    response = client.post(f"/api/v1/clusters/{profile.pk}/credential/test")
    assert response.status_code == 202
    assert response.json()["last_test_ok"] is None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        credential = ClusterCredential.objects.get(user=user, profile=profile)
        if credential.last_test_ok is not None:
            break
        time.sleep(0.3)
    assert credential.last_test_ok is True, credential.last_test_summary
    activity = client.get("/api/v1/activity").json()
    assert [item["argv"][0] for item in activity] == ["command", "id"]


def test_detect_namd_builds_finds_the_clusters_namd_binaries(db, local_facts, local_profile) -> None:
    from clusters.services import detect_namd_builds

    admin = UserFactory(username="admin_detects", is_staff=True)
    key = (Path(local_facts["LOCALCLUSTER_KEYS_DIR"]) / CLUSTER_USER).read_text()
    save_key_credential(
        user=admin, profile=local_profile, remote_username=CLUSTER_USER, private_key=key, passphrase=None
    )
    found = detect_namd_builds(profile_id=local_profile.pk, acting_user_id=admin.pk)
    assert found == ["binary: /usr/local/bin/namd2", "binary: /usr/local/bin/namd3"]  # no module system here
    local_profile.refresh_from_db()
    assert local_profile.detected_namd_builds == found


def test_member_transfers_stay_in_their_roots_and_are_recorded(cluster_member, tmp_path) -> None:
    from portal.errors import Forbidden

    user, credential = cluster_member
    session = MemberSession(credential)
    scratch = session.roots[1]
    local = tmp_path / "in.dat"
    local.write_bytes(b"x" * 5000)
    remote = f"{scratch}/transfer-test-{user.pk}.dat"
    assert session.upload(str(local), remote).size_bytes == 5000
    back = tmp_path / "back.dat"
    assert session.download(remote, str(back)).size_bytes == 5000
    assert back.read_bytes() == local.read_bytes()
    session.run(["rm", "-f", "--", remote])
    with pytest.raises(Forbidden) as raised:
        session.upload(str(local), "/etc/evil.dat")
    assert raised.value.code == "REMOTE_PATH_FORBIDDEN"
    moves = RemoteCommandRecord.objects.filter(user=user, argv__0__in=["upload", "download"]).order_by("started_at")
    assert [(r.argv[0], r.bytes_sent, r.bytes_received) for r in moves] == [("upload", 5000, 0), ("download", 0, 5000)]


def test_accepting_a_rotated_host_key_replaces_the_old_key_of_its_type(cluster_member, local_profile) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    def line(private_key) -> str:
        public = private_key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        return public.decode()

    old_ed25519, other_type = line(ed25519.Ed25519PrivateKey.generate()), line(ec.generate_private_key(ec.SECP256R1()))
    ClusterProfile.objects.filter(pk=local_profile.pk).update(pinned_host_keys=f"{old_ed25519}\n{other_type}")
    fetched = fetch_first_contact_host_key(profile_id=local_profile.pk)
    local_profile.refresh_from_db()
    accept_pending_host_key(profile=local_profile, user=UserFactory(username="root_t", is_superuser=True))
    local_profile.refresh_from_db()
    assert local_profile.pinned_host_key_lines == (other_type, fetched)
    user, credential = cluster_member
    report = check_credential_connection(credential_id=credential.pk, acting_user_id=user.pk)
    assert (report.is_ok, report.code) == (True, "OK")
