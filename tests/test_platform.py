"""The platform itself: settings, the real PostgreSQL, migrations, health, the Celery round trip."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from portal.tasks import ping_task
from tests.conftest import PROJECT_DIR


@pytest.mark.django_db
def test_database_is_the_real_postgresql() -> None:
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        assert int(cursor.fetchone()[0]) >= 150000


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_every_migration_is_applied_to_the_test_database() -> None:
    out = StringIO()
    call_command("showmigrations", "--plan", stdout=out)
    plan = out.getvalue().splitlines()
    assert plan
    assert [line for line in plan if line.startswith("[ ]")] == []


def _settings_process(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=PROJECT_DIR,
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PORTAL_ENV_FILE": "/dev/null",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_refuse_to_start_without_a_secret_key() -> None:
    result = _settings_process({"PORTAL_DB_PASSWORD": "x", "PORTAL_CREDENTIAL_KEYS": "k"})
    assert result.returncode != 0
    assert "secret_key" in result.stderr


def test_settings_refuse_debug_in_production() -> None:
    env = {
        "PORTAL_CREDENTIAL_KEYS": "k",
        "PORTAL_SECRET_KEY": "k" * 40,
        "PORTAL_DB_PASSWORD": "x",
        "PORTAL_ENVIRONMENT": "production",
        "PORTAL_DEBUG": "true",
    }
    result = _settings_process(env)
    assert result.returncode != 0
    assert "PORTAL_DEBUG must be off in production" in result.stderr


def test_settings_start_with_every_required_value() -> None:
    result = _settings_process(
        {"PORTAL_SECRET_KEY": "k" * 40, "PORTAL_DB_PASSWORD": "x", "PORTAL_CREDENTIAL_KEYS": "k"}
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_health_reports_database_and_broker(client) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True, "broker": True}


def test_celery_task_round_trip_through_redis_and_a_real_worker(celery_worker_process) -> None:
    payload = uuid.uuid4().hex
    result = ping_task.apply_async(args=[payload], queue=celery_worker_process.queue)
    answer = result.get(timeout=60)
    assert answer["payload"] == payload
    assert answer["worker"].startswith(celery_worker_process.queue + "@")
