"""Writes on clusters: members' credentials (checked, encrypted, replaced whole or not at all), and the
work tasks do on a cluster for them: connection tests, first-contact host keys, partition discovery."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from clusters import namd_builds, slurm, ssh
from clusters.access import access_own_credential, access_own_credential_by_id
from clusters.crypto import SealedSecret, encrypt
from clusters.gateway import MemberSession, portal_error
from clusters.models import (
    ClusterCredential,
    ClusterProfile,
    ClusterProfileChange,
    LaunchRecipe,
    Partition,
    validate_remote_username,
)
from clusters.ssh.keys import UnusableKey, check_private_key, generate_ed25519_key
from portal.enqueue import enqueue_on_commit
from portal.errors import Conflict, Forbidden, InvalidInput, PortalError
from portal.queues import cluster_queue

MAX_PASSWORD_LENGTH = 1024


def _checked_username(remote_username: str) -> str:
    remote_username = remote_username.strip()
    try:
        validate_remote_username(remote_username)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], code="REMOTE_USERNAME_INVALID") from exc
    return remote_username


@transaction.atomic
def _replace_credential(
    *,
    user: User,
    profile: ClusterProfile,
    remote_username: str,
    auth_kind: str,
    secret: str,
    passphrase: str | None,
    public_key: str,
) -> ClusterCredential:
    credential, _ = ClusterCredential.objects.update_or_create(
        user=user,
        profile=profile,
        defaults={
            "remote_username": remote_username,
            "auth_kind": auth_kind,
            "secret": SealedSecret(encrypt(secret)),
            "passphrase": SealedSecret(encrypt(passphrase)) if passphrase else None,
            "public_key": public_key,
            "last_tested_at": None,
            "last_test_ok": None,
            "last_test_summary": "",
        },
    )
    return credential


def save_key_credential(
    *, user: User, profile: ClusterProfile, remote_username: str, private_key: str, passphrase: str | None
) -> ClusterCredential:
    """Store (or replace) a member's key. Raises InvalidInput with the key's problem as its code."""
    username = _checked_username(remote_username)
    try:
        checked = check_private_key(private_key, passphrase or None)
    except UnusableKey as exc:
        raise InvalidInput(str(exc), code=exc.code) from exc
    return _replace_credential(
        user=user,
        profile=profile,
        remote_username=username,
        auth_kind=ClusterCredential.AuthKind.KEY,
        secret=private_key.strip() + "\n",
        passphrase=passphrase or None,
        public_key=checked.public_key,
    )


def save_password_credential(
    *, user: User, profile: ClusterProfile, remote_username: str, password: str
) -> ClusterCredential:
    """Store (or replace) a member's password login. Raises InvalidInput."""
    username = _checked_username(remote_username)
    if not password or len(password) > MAX_PASSWORD_LENGTH or "\n" in password:
        raise InvalidInput("Enter the cluster password (one line).", code="PASSWORD_INVALID")
    return _replace_credential(
        user=user,
        profile=profile,
        remote_username=username,
        auth_kind=ClusterCredential.AuthKind.PASSWORD,
        secret=password,
        passphrase=None,
        public_key="",
    )


def generate_key_credential(
    *, user: User, profile: ClusterProfile, remote_username: str, passphrase: str | None
) -> ClusterCredential:
    """Make a new ed25519 key for the member; its public half is shown for them to install."""
    username = _checked_username(remote_username)
    generated = generate_ed25519_key(comment=f"namd-portal:{user.username}@{profile.slug}", passphrase=passphrase)
    return _replace_credential(
        user=user,
        profile=profile,
        remote_username=username,
        auth_kind=ClusterCredential.AuthKind.KEY,
        secret=generated.private_key,
        passphrase=passphrase or None,
        public_key=generated.public_key,
    )


def delete_credential(*, credential: ClusterCredential) -> None:
    credential.delete()


# ------------------------------------------------------------------ work done on the cluster (tasks only)


@dataclass(frozen=True)
class ConnectionReport:
    is_ok: bool
    code: str
    summary: str


REQUIRED_TOOLS = ("sbatch", "squeue", "sacct", "scancel")


def check_credential_connection(*, credential_id: int, acting_user_id: int, task_id: str = "") -> ConnectionReport:
    """Reach the login node with the member's credential, check host key, login and SLURM tools; record it."""
    user = User.objects.get(pk=acting_user_id)
    credential = access_own_credential_by_id(user=user, credential_id=credential_id)  # never another's
    try:
        session = MemberSession(credential, task_id=task_id, acting_user_id=user.pk)
        whoami = session.run(["id", "-un"], timeout_s=20, check=True).stdout.strip()
        found = session.run(["command", "-v", *REQUIRED_TOOLS], timeout_s=20).stdout.split()
        missing = [tool for tool in REQUIRED_TOOLS if not any(path.endswith(f"/{tool}") for path in found)]
        if missing:
            report = ConnectionReport(
                False, "SLURM_TOOLS_MISSING", f"Logged in as {whoami}, but not found: {', '.join(missing)}."
            )
        else:
            report = ConnectionReport(
                True,
                "OK",
                f"Reached the cluster, host key verified, logged in as {whoami}; "
                "sbatch, squeue, sacct and scancel found.",
            )
    except PortalError as exc:
        report = ConnectionReport(False, exc.code, exc.user_message)
    ClusterCredential.objects.filter(pk=credential.pk, updated_at=credential.updated_at).update(
        last_tested_at=timezone.now(),
        last_test_ok=report.is_ok,
        last_test_summary=f"{report.code}: {report.summary}"[:500],
    )
    return report


def request_connection_test(*, credential: ClusterCredential, acting_user: User) -> None:
    """Queue a connection test; the result lands on the credential (last_test_*)."""
    ClusterCredential.objects.filter(pk=credential.pk).update(last_test_ok=None, last_test_summary="Testing…")
    enqueue_on_commit(
        "clusters.tasks.check_credential_connection_task",
        credential.pk,
        acting_user.pk,
        queue=cluster_queue(credential.profile_id),
    )


def fetch_first_contact_host_key(*, profile_id: int) -> str:
    """Read the login node's host key (no login) into pending_host_key for an admin to compare and accept."""
    profile = ClusterProfile.objects.get(pk=profile_id)
    try:
        key_line = ssh.fetch_host_key(profile.login_host, profile.login_port, timeout_s=15)
    except ssh.TransportError as exc:
        raise portal_error(exc) from exc
    ClusterProfile.objects.filter(pk=profile.pk).update(pending_host_key=key_line)
    return key_line


def accept_pending_host_key(*, profile: ClusterProfile, user: User) -> None:
    """Pin the key fetched at first contact, replacing a pinned key of its type (a rotated key); recorded.
    Raises Forbidden (PROFILE_FIELD_SUPERUSER_ONLY), Conflict (NO_PENDING_HOST_KEY)."""
    check_may_edit_member_facing_fields(user)
    if not profile.pending_host_key.strip():
        raise Conflict("No host key is waiting: fetch it first.", code="NO_PENDING_HOST_KEY")
    old = profile.pinned_host_keys
    profile.pinned_host_keys = "\n".join(
        ssh.pin_replacing_its_type(profile.pinned_host_key_lines, profile.pending_host_key)
    )
    profile.pending_host_key = ""
    with transaction.atomic():
        profile.save(update_fields=["pinned_host_keys", "pending_host_key", "updated_at"])
        record_profile_changes(
            profile=profile, user=user, changes={"pinned_host_keys": (old, profile.pinned_host_keys)}
        )


# ------------------------------------------------------------------ profile fields that run on members' accounts

# The login node (a member's password or key is sent there), what it is trusted by, where members' files go
# and what runs in their batch scripts: superusers only, every change recorded.
MEMBER_FACING_PROFILE_FIELDS = (
    "login_host",
    "login_port",
    "pinned_host_keys",
    "pending_host_key",
    "project_root_pattern",
    "scratch_root_pattern",
    "module_lines",
)
MEMBER_FACING_RECIPE_FIELDS = ("name", "kind", "module_lines", "command", "container_image", "is_default")


def may_edit_member_facing_fields(user: User) -> bool:
    return user.is_active and user.is_superuser


def check_may_edit_member_facing_fields(user: User) -> None:
    """Raises Forbidden (PROFILE_FIELD_SUPERUSER_ONLY) unless `user` is an active superuser."""
    if not may_edit_member_facing_fields(user):
        raise Forbidden(
            "Only a superuser may change a cluster's login node, host keys, storage roots, module lines or "
            "launch recipes: they run on members' accounts. Ask a superuser.",
            code="PROFILE_FIELD_SUPERUSER_ONLY",
        )


def record_profile_changes(
    *, profile: ClusterProfile, user: User | None, changes: dict[str, tuple[object, object]]
) -> list[ClusterProfileChange]:
    """One audit row per (field, (old, new)) that really changed."""
    return [
        ClusterProfileChange.objects.create(
            profile=profile, changed_by=user, field=field[:200], old_value=str(old), new_value=str(new)
        )
        for field, (old, new) in changes.items()
        if old != new
    ]


def member_facing_changes(before: ClusterProfile | None, after: ClusterProfile) -> dict[str, tuple[object, object]]:
    """The member-facing profile fields that differ between two versions of a profile (all of them when new)."""
    return {
        field: (getattr(before, field) if before else "", getattr(after, field))
        for field in MEMBER_FACING_PROFILE_FIELDS
        if before is None or getattr(before, field) != getattr(after, field)
    }


def recipe_changes(before: LaunchRecipe | None, after: LaunchRecipe | None) -> dict[str, tuple[object, object]]:
    """A recipe's changed fields as audit entries named 'recipe <name> / <field>' (a deletion: after None)."""
    name = (after or before).name if (after or before) else ""
    return {
        f"recipe {name} / {field}": (getattr(before, field) if before else "", getattr(after, field) if after else "")
        for field in MEMBER_FACING_RECIPE_FIELDS
        if (getattr(before, field) if before else "") != (getattr(after, field) if after else "")
    }


def save_profile(*, profile: ClusterProfile, user: User) -> ClusterProfile:
    """Save an edited profile (a new one too): member-facing fields by a superuser only; a new login host or
    port drops the pinned keys (they vouch for the old host: pin the new one after first contact); every
    member-facing change recorded. Raises Forbidden (PROFILE_FIELD_SUPERUSER_ONLY)."""
    before = ClusterProfile.objects.filter(pk=profile.pk).first() if profile.pk else None
    if before is not None and (before.login_host, before.login_port) != (profile.login_host, profile.login_port):
        profile.pinned_host_keys = ""
        profile.pending_host_key = ""
    changes = member_facing_changes(before, profile)
    if changes:
        check_may_edit_member_facing_fields(user)
    with transaction.atomic():
        profile.save()
        record_profile_changes(profile=profile, user=user, changes=changes)
    return profile


@transaction.atomic
def discover_partitions(*, profile_id: int, acting_user_id: int, task_id: str = "") -> list[Partition]:
    """Fill the profile's partitions from `sinfo`, run with the admin's own credential on that cluster."""
    admin = User.objects.get(pk=acting_user_id, is_active=True, is_staff=True)
    credential = access_own_credential(user=admin, profile_id=profile_id)
    session = MemberSession(credential, task_id=task_id, acting_user_id=admin.pk)
    result = session.run(slurm.build_partition_info_argv(), check=True)
    partitions = []
    found = slurm.parse_partition_info(result.stdout)
    if any(info.is_default for info in found):
        Partition.objects.filter(profile_id=profile_id).update(is_default=False)
    for info in found:
        partition, _ = Partition.objects.update_or_create(
            profile_id=profile_id,
            name=info.name,
            defaults={
                "is_default": info.is_default,
                "max_walltime_s": info.max_walltime_s,
                "max_nodes": info.node_count or None,
                "cores_per_node": info.cores_per_node,
                "memory_per_node_mb": info.memory_per_node_mb,
                "gpus_per_node": info.gpus_per_node,
            },
        )
        partitions.append(partition)
    return partitions


def detect_namd_builds(*, profile_id: int, acting_user_id: int, task_id: str = "") -> list[str]:
    """Record the NAMD modules and binaries the cluster offers, seen with the admin's own credential."""
    admin = User.objects.get(pk=acting_user_id, is_active=True, is_staff=True)
    credential = access_own_credential(user=admin, profile_id=profile_id)
    modules, binaries = MemberSession(credential, task_id=task_id, acting_user_id=admin.pk).run_sequence(
        [namd_builds.module_avail_argv(), namd_builds.binaries_argv()]
    )
    found = [
        *(f"module: {name}" for name in namd_builds.parse_module_avail(modules.stdout + modules.stderr)),
        *(f"binary: {path}" for path in namd_builds.parse_binaries(binaries.stdout)),
    ]
    ClusterProfile.objects.filter(pk=profile_id).update(detected_namd_builds=found)
    return found
