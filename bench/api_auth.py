"""API authentication cost: a personal-token request against a session request (the baseline).

Runs requests in-process through Django's full middleware and django-ninja stack against the
real PostgreSQL, so the figure is what token auth adds per request (a digest lookup by a unique
index, plus at most one `last_used_at` write a minute). Uses a throwaway user, removed after.
"""

from __future__ import annotations

import logging
import os
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.test import Client  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import create_api_token  # noqa: E402
from bench.report import print_report, summarize, time_calls  # noqa: E402

# Each case uses its own user and stays under the API's per-user throttle (600 requests a minute).
REPEAT = 300


def main() -> None:
    logging.getLogger("django.request").setLevel(logging.ERROR)  # the 401 case would log every request
    token_user, session_user = (
        User.objects.create_user(username=f"bench-{uuid.uuid4().hex[:8]}", password=uuid.uuid4().hex) for _ in range(2)
    )
    try:
        secret = create_api_token(user=token_user, name="bench", expires_in_days=1).secret
        token_client, session_client, anonymous_client = (Client(SERVER_NAME="localhost") for _ in range(3))
        session_client.force_login(session_user)

        def token_request() -> None:
            assert token_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200

        def session_request() -> None:
            assert session_client.get("/api/v1/me").status_code == 200

        def refused_request() -> None:
            assert anonymous_client.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer np_" + "x" * 40).status_code == 401

        rows = {
            "session (baseline)": summarize(time_calls(session_request, repeat=REPEAT)),
            "personal token": summarize(time_calls(token_request, repeat=REPEAT)),
            "wrong token (401)": summarize(time_calls(refused_request, repeat=REPEAT)),
        }
    finally:
        token_user.delete()
        session_user.delete()
    baseline = rows["session (baseline)"]["median_ms"]
    figures = {
        "bench": "api_auth",
        "requests_per_case": REPEAT,
        "session_median_ms": round(baseline, 3),
        "token_median_ms": round(rows["personal token"]["median_ms"], 3),
        "refused_median_ms": round(rows["wrong token (401)"]["median_ms"], 3),
        "token_vs_session_ratio": round(rows["personal token"]["median_ms"] / baseline, 3),
        "refused_vs_session_ratio": round(rows["wrong token (401)"]["median_ms"] / baseline, 3),
    }
    print_report(f"GET /api/v1/me, {REPEAT} requests each, in-process", rows, figures)


if __name__ == "__main__":
    main()
