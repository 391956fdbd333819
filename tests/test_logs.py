"""portal.logs: a standard-library logger's `extra` fields reach the JSON line, secret-named ones redacted."""

from __future__ import annotations

import json
import logging

from portal.logs import build_logging_config


def test_extra_fields_are_written_and_secret_named_ones_redacted() -> None:
    options = dict(build_logging_config(level="INFO", as_json=True)["formatters"]["structured"])
    formatter = options.pop("()")(**options)  # the console handler's formatter, as dictConfig builds it
    record = logging.LogRecord("portal.worker_supervisor", logging.INFO, __file__, 1, "worker_started", (), None)
    record.queue = "portal.cluster.7"
    record.password = "hunter2"  # what the redaction must hide

    line = json.loads(formatter.format(record))

    assert line["event"] == "worker_started"
    assert line["queue"] == "portal.cluster.7"
    assert line["password"] == "[redacted]"
