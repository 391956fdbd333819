"""The web container's health check: `python -m portal.healthcheck` exits 0 when GET /api/v1/health says ok.

It asks the gunicorn of its own container (PORTAL_BIND, 0.0.0.0 read as 127.0.0.1) with the site's first
allowed host as Host, so Django's host check lets it in; no Django start-up, answered in milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request


def health_url(bind: str) -> str:
    host, _, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "[::]"):  # noqa: S104 - the address gunicorn listens on, asked on loopback
        host = "127.0.0.1"
    return f"http://{host}:{port}/api/v1/health"


def main() -> int:
    allowed = [name.strip() for name in os.environ.get("PORTAL_ALLOWED_HOSTS", "").split(",") if name.strip()]
    request = urllib.request.Request(health_url(os.environ.get("PORTAL_BIND", "0.0.0.0:8000")))  # noqa: S310 - http only
    if allowed and not allowed[0].startswith("."):
        request.add_header("Host", allowed[0])
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the http URL built above
            answer = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0 if answer.get("status") == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
