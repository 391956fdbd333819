"""Structured logging: structlog on top of the standard library, one JSON object a line.

Context (request_id, user_id, job_id, cluster, task_id) is bound through structlog's
contextvars so every line written while handling a request or task carries it. Secrets are
never passed to a logger; `redact_secrets` is a last line of defence for known secret keys.
"""

from __future__ import annotations

from typing import Any

import structlog

SECRET_FIELD_NAMES = frozenset({"password", "passphrase", "private_key", "token", "secret", "authorization"})


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Replace the value of any field whose name says it is a secret."""
    for key in event_dict:
        if key.lower() in SECRET_FIELD_NAMES:
            event_dict[key] = "[redacted]"
    return event_dict


SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    # The standard library's `extra={...}` fields (how the portal's modules log them) become the line's fields;
    # before the redaction, which then covers them too.
    structlog.stdlib.ExtraAdder(),
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    redact_secrets,
]


def build_logging_config(*, level: str, as_json: bool) -> dict[str, Any]:
    """Return Django's LOGGING dict and configure structlog to feed it."""
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                "foreign_pre_chain": SHARED_PROCESSORS,
            }
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structured", "stream": "ext://sys.stdout"}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "paramiko": {"level": "WARNING"},
        },
    }
