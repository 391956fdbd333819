"""Numbers read the way NAMD's C code reads them: sscanf's %d and %f take a number's start and ignore the rest.

Knows nothing of any one format, of Django or of the cluster.
"""

from __future__ import annotations

import re

INT_START = re.compile(rb"\s*([+-]?\d+)")
FLOAT_START = re.compile(rb"\s*[+-]?(?:\d|\.\d|inf|nan)", re.IGNORECASE)
FLOAT_TOKEN = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?")


def leading_int(text: bytes) -> int | None:
    match = INT_START.match(text)
    return int(match.group(1)) if match else None


def is_float(token: bytes) -> bool:
    return FLOAT_TOKEN.fullmatch(token) is not None
