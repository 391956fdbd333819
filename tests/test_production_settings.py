"""Production settings: HTTPS only (HSTS, secure cookies), the client's real address for django-axes behind the
configured proxies and never a forwarded one without them, and no demo accounts outside development."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from accounts.models import User
from portal.client_address import client_address
from tests.conftest import PROJECT_DIR

PRODUCTION_ENV = {
    "PORTAL_ENVIRONMENT": "production",
    "PORTAL_SECRET_KEY": "Zq8#vN2!pL5@xR9$tW3^yB7&cM1*dF6(hJ4)kS0-gE_uA+oI.mT3~wQ7",
    "PORTAL_DB_PASSWORD": "x",
    "PORTAL_CREDENTIAL_KEYS": "k",
    "PORTAL_ALLOWED_HOSTS": "portal.lab.example",
    "PORTAL_TRUSTED_PROXY_COUNT": "1",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env={"PATH": os.environ["PATH"], "PORTAL_ENV_FILE": "/dev/null", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_finds_nothing_in_production() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_sends_hsts_and_secure_cookies_and_trusts_the_proxys_scheme() -> None:
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_PROXY_SSL_HEADER)"
    )
    env = {**PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_DIR,
        env={"PATH": os.environ["PATH"], "PORTAL_ENV_FILE": "/dev/null", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    hsts, redirect, session_secure, csrf_secure, proxy_header = result.stdout.strip().split(maxsplit=4)
    assert (hsts, redirect, session_secure, csrf_secure) == ("31536000", "True", "True", "True")
    assert proxy_header == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_development_without_a_proxy_believes_no_forwarded_scheme(settings) -> None:
    assert settings.TRUSTED_PROXY_COUNT == 0
    assert settings.SECURE_PROXY_SSL_HEADER is None
    assert settings.SECURE_HSTS_SECONDS == 0


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "expected"),
    [
        (0, None, "192.0.2.10"),
        (0, "203.0.113.7", "192.0.2.10"),  # no proxy configured: a client's header is never believed
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the left entry is the client's own writing
        (2, "198.51.100.1, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "203.0.113.7", "192.0.2.10"),  # fewer hops than proxies: it did not come through them
        (1, "not-an-address", "192.0.2.10"),
        (1, None, "192.0.2.10"),
    ],
)
def test_axes_keys_on_the_address_the_outermost_trusted_proxy_saw(
    settings, proxies: int, forwarded_for: str | None, expected: str
) -> None:
    settings.TRUSTED_PROXY_COUNT = proxies
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
    request = RequestFactory().get("/login/", REMOTE_ADDR="192.0.2.10", **headers)
    assert client_address(request) == expected


@pytest.mark.django_db
def test_a_forged_forwarded_for_cannot_lock_out_another_address(client, settings) -> None:
    """Five failures from one client behind the proxy lock that client, not the address it forged."""
    settings.TRUSTED_PROXY_COUNT = 1
    User.objects.create_user(username="carol", password="a long enough password")
    for _ in range(5):
        client.post(
            "/login/",
            {"username": "carol", "password": "wrong"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR="203.0.113.66, 198.51.100.9",
        )
    locked = client.post(
        "/login/",
        {"username": "carol", "password": "a long enough password"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.9",
    )
    assert locked.status_code == 429
    other = client.post(
        "/login/",
        {"username": "carol", "password": "a long enough password"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.66",
    )
    assert other.status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("environment", ["production", "test"])
def test_seed_demo_refuses_outside_development(settings, environment: str) -> None:
    settings.ENVIRONMENT = environment
    with pytest.raises(CommandError, match="PORTAL_ENVIRONMENT=development"):
        call_command("seed_demo")
    assert User.objects.filter(is_superuser=True).count() == 0
