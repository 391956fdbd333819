"""Typed settings read from `PORTAL_*` environment variables (and an optional env file).

Fails at start, with the name of the variable, when a value is missing or malformed.
Secrets are `SecretStr` so they never show up in a repr or a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BASE_DIR = Path(__file__).resolve().parent.parent

CommaList = Annotated[list[str], NoDecode]


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PORTAL_",
        env_file=os.environ.get("PORTAL_ENV_FILE", BASE_DIR / ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    environment: Literal["development", "test", "production"] = "development"
    secret_key: SecretStr = Field(min_length=32)
    debug: bool = False
    allowed_hosts: CommaList = ["localhost", "127.0.0.1"]
    csrf_trusted_origins: CommaList = []

    db_host: str = "127.0.0.1"
    db_port: int = 5432
    db_name: str = "portal"
    db_user: str = "portal"
    db_password: SecretStr

    # Fernet keys for cluster credentials at rest, comma-separated, newest first (rotate with
    # `manage.py rotate_credential_keys`). Separate from secret_key on purpose.
    credential_keys: SecretStr

    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_task_queue: str = "portal"

    static_root: Path = BASE_DIR / "staticfiles"
    # Uploaded inputs wait here until a worker copies them to the cluster; fetched results wait here
    # to be streamed. Web and workers must share it (one disk, or one volume in docker-compose).
    file_store: Path = BASE_DIR / "var" / "files"
    # Reverse proxies in front of the portal that each append the address they received from to
    # X-Forwarded-For (docker-compose's TLS proxy: 1). 0: the client is REMOTE_ADDR and X-Forwarded-For
    # and X-Forwarded-Proto are never believed.
    trusted_proxy_count: int = Field(default=0, ge=0, le=5)
    # The portal's address as members reach it: links in mails and webhooks (notifications) start with it.
    base_url: str = "http://127.0.0.1:8000"
    # Outgoing mail (notifications): Django's SMTP backend. `scripts/services` writes the local SMTP server's.
    email_host: str = "127.0.0.1"
    email_port: int = Field(default=25, gt=0, lt=65536)
    email_user: str = ""
    email_password: SecretStr = SecretStr("")
    email_use_tls: bool = False
    email_use_ssl: bool = False
    email_from: str = "NAMD portal <portal@localhost>"

    log_level: str = "INFO"
    log_json: bool = True

    # Bounds on the portal's file store (jobs/file_store.py, jobs/services/cleanup.py): the largest file a
    # member may download through the portal, what one member's staged downloads and uploads may hold
    # together, and how long staged downloads and unfinished resumable uploads are kept.
    download_max_bytes: int = Field(default=10 * 2**30, gt=0)
    storage_quota_bytes: int = Field(default=50 * 2**30, gt=0)
    staged_download_ttl_hours: float = Field(default=24.0, gt=0)
    upload_part_ttl_hours: float = Field(default=48.0, gt=0)
    # The 3D view (jobs/viewer/): the frames kept of one job's trajectory and the bytes they may take, the atoms
    # drawn before a system is thinned, and the largest structure or coordinate file fetched to build it.
    view_max_frames: int = Field(default=100, gt=0)
    view_max_bytes: int = Field(default=256 * 2**20, gt=0)
    view_max_atoms: int = Field(default=500_000, gt=0)
    view_input_max_bytes: int = Field(default=2 * 2**30, gt=0)

    @field_validator("allowed_hosts", "csrf_trusted_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("debug")
    @classmethod
    def _no_debug_in_production(cls, value: bool, info) -> bool:
        if value and info.data.get("environment") == "production":
            raise ValueError("PORTAL_DEBUG must be off in production")
        return value


def load_settings() -> PortalSettings:
    """Read the settings once; a missing or bad variable stops the process with its name."""
    return PortalSettings()
