"""gunicorn's settings in the container (`gunicorn -c python:portal.gunicorn_conf portal.wsgi`).

The address comes from PORTAL_BIND (default 0.0.0.0:8000); gunicorn's own error and access lines go
through the portal's logging, so every line on stdout is one JSON object like the portal's.
"""

from __future__ import annotations

import os

from portal.logs import build_logging_config

bind = os.environ.get("PORTAL_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.environ.get("PORTAL_WEB_WORKERS", "3"))
threads = int(os.environ.get("PORTAL_WEB_THREADS", "4"))
graceful_timeout = 20

logconfig_dict = build_logging_config(level=os.environ.get("PORTAL_LOG_LEVEL", "INFO"), as_json=True)
logconfig_dict["loggers"].update(
    {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
    }
)
