"""The deployment file is valid for docker-compose and wires every service the portal needs."""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest
import yaml

from tests.conftest import PROJECT_DIR

DEPLOY_ENV = {
    "PORTAL_SECRET_KEY": "s" * 50,
    "PORTAL_CREDENTIAL_KEYS": "c" * 44,
    "PORTAL_DB_PASSWORD": "pw",
    "PORTAL_ALLOWED_HOSTS": "portal.lab.example",
    "PORTAL_BASE_URL": "https://portal.lab.example",
    "PORTAL_TLS_CERT": "/etc/ssl/portal/fullchain.pem",
    "PORTAL_TLS_KEY": "/etc/ssl/portal/privkey.pem",
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
    assert set(result.stdout.split()) == {"proxy", "db", "redis", "migrate", "web", "worker", "beat"}
    rendered = compose("config", env=DEPLOY_ENV).stdout
    assert "PORTAL_ENVIRONMENT: production" in rendered
    assert "slurm" not in rendered.lower()


@pytest.mark.parametrize("missing", sorted(DEPLOY_ENV))
def test_compose_refuses_to_run_without_a_required_secret(missing: str) -> None:
    env = {key: value for key, value in DEPLOY_ENV.items() if key != missing}
    result = compose("config", "-q", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_only_the_tls_proxy_is_published_and_the_portal_trusts_exactly_it() -> None:
    services = yaml.safe_load(compose("config", env=DEPLOY_ENV).stdout)["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    assert {str(port.get("target", port)).split(":")[-1] for port in services["proxy"]["ports"]} >= {"443"}
    mounts = set(services["proxy"]["volumes"])  # docker-compose 1.29 renders them as source:target:mode
    assert f"{DEPLOY_ENV['PORTAL_TLS_CERT']}:/certs/fullchain.pem:ro" in mounts
    assert f"{DEPLOY_ENV['PORTAL_TLS_KEY']}:/certs/privkey.pem:ro" in mounts
    for name in ("web", "worker", "beat", "migrate"):
        assert services[name]["environment"]["PORTAL_TRUSTED_PROXY_COUNT"] == "1"
    caddyfile = (PROJECT_DIR / "deploy" / "Caddyfile").read_text()
    assert "tls /certs/fullchain.pem /certs/privkey.pem" in caddyfile
    assert "reverse_proxy {$PORTAL_UPSTREAM:web:8000}" in caddyfile  # the compose test sets its 127.0.0.1 port


def test_every_image_is_built_here_from_a_base_named_by_a_build_argument() -> None:
    services = yaml.safe_load(compose("config", env=DEPLOY_ENV).stdout)["services"]
    assert all("build" in service for service in services.values())
    assert services["web"]["build"]["args"]["PYTHON_IMAGE"] == "python:3.11-slim-bookworm"
    for name in ("proxy", "db", "redis"):
        assert services[name]["build"]["args"]["BASE_IMAGE"] == "debian:bookworm-slim"
        assert services[name]["build"]["context"].endswith(f"deploy/images/{name if name != 'db' else 'postgres'}")


def test_web_workers_and_beat_start_only_after_the_migrations_ran_once() -> None:
    services = yaml.safe_load(compose("config", env=DEPLOY_ENV).stdout)["services"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["worker"]["command"] == ["python", "manage.py", "run_workers"]
    assert services["web"]["healthcheck"]["test"] == ["CMD", "python", "-m", "portal.healthcheck"]
    assert services["proxy"]["depends_on"]["web"] == {"condition": "service_healthy"}
