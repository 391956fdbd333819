"""The deployment file is valid for docker-compose and wires every service the portal needs."""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from tests.conftest import PROJECT_DIR

DEPLOY_ENV = {
    "PORTAL_SECRET_KEY": "s" * 50,
    "PORTAL_CREDENTIAL_KEYS": "c" * 44,
    "PORTAL_DB_PASSWORD": "pw",
    "PORTAL_ALLOWED_HOSTS": "portal.lab.example",
}


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run docker-compose with only `env`: an empty env file keeps the local dev `.env` out."""
    with tempfile.NamedTemporaryFile(suffix=".env") as empty_env_file:
        return subprocess.run(
            ["docker-compose", "--env-file", empty_env_file.name, "-f", "docker-compose.yml", *args],
            cwd=PROJECT_DIR,
            env={"PATH": os.environ["PATH"], **env},
            capture_output=True,
            text=True,
            timeout=120,
        )


def test_compose_file_is_valid() -> None:
    result = compose("config", "-q", env=DEPLOY_ENV)
    assert result.returncode == 0, result.stderr


def test_compose_runs_web_worker_beat_postgres_and_redis_with_production_settings() -> None:
    result = compose("config", "--services", env=DEPLOY_ENV)
    assert set(result.stdout.split()) == {"db", "redis", "migrate", "web", "worker", "beat"}
    rendered = compose("config", env=DEPLOY_ENV).stdout
    assert "PORTAL_ENVIRONMENT: production" in rendered
    assert "slurm" not in rendered.lower()


@pytest.mark.parametrize("missing", sorted(DEPLOY_ENV))
def test_compose_refuses_to_run_without_a_required_secret(missing: str) -> None:
    env = {key: value for key, value in DEPLOY_ENV.items() if key != missing}
    result = compose("config", "-q", env=env)
    assert result.returncode != 0
    assert missing in result.stderr
