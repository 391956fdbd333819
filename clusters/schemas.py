"""API shapes for clusters. Secrets are write-only: no output schema has a field for them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema


class PartitionOut(Schema):
    name: str
    is_default: bool
    max_walltime_s: int | None
    max_nodes: int | None
    cores_per_node: int
    memory_per_node_mb: int | None
    gpus_per_node: int


class LaunchRecipeOut(Schema):
    name: str
    kind: str
    is_default: bool


class ProfileOut(Schema):
    id: int
    name: str
    slug: str
    description: str
    login_host: str
    login_port: int
    allowed_accounts: list[str]
    allowed_qos: list[str]
    partitions: list[PartitionOut]
    launch_recipes: list[LaunchRecipeOut]
    health: str  # 'ok'; 'degraded' while the portal pauses calls to a failing login node; 'unknown'

    @staticmethod
    def resolve_health(profile) -> str:
        from clusters.gateway import cluster_health  # Redis only; never SSH in a web request

        return cluster_health(profile)

    @staticmethod
    def resolve_partitions(profile) -> list:
        return list(profile.partitions.all())

    @staticmethod
    def resolve_launch_recipes(profile) -> list:
        return list(profile.launch_recipes.all())


class CredentialIn(Schema):
    remote_username: str = Field(min_length=1, max_length=32)
    auth_kind: Literal["key", "password", "generate"]
    private_key: str | None = Field(default=None, description="For auth_kind=key: OpenSSH or PEM private key text.")
    passphrase: str | None = Field(default=None, description="For a key that has one, or for a generated key.")
    password: str | None = Field(default=None, description="For auth_kind=password.")


class CredentialOut(Schema):
    id: int
    profile_id: int
    remote_username: str
    auth_kind: str
    public_key: str
    has_passphrase: bool
    created_at: datetime
    updated_at: datetime
    last_tested_at: datetime | None
    last_test_ok: bool | None
    last_test_summary: str

    @staticmethod
    def resolve_has_passphrase(credential) -> bool:
        return credential.passphrase is not None


class RemoteCommandOut(Schema):
    id: int
    profile_id: int
    argv: list[str]
    exit_code: int | None
    error_code: str
    duration_ms: int
    bytes_sent: int
    bytes_received: int
    task_id: str
    started_at: datetime
