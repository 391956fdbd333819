"""Reading the fields of SLURM's delimited output: rows, "no value" words, timestamps, durations.

Owns what squeue, sacct and sinfo print in place of a value ("N/A", "None", "Unknown" ...) and their
duration and time forms. Must never know which command printed a row or what a row means.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

logger = logging.getLogger(__name__)

SQUEUE_ELAPSED_PATTERN = re.compile(r"(?:([0-9]+)-)?(?:([0-9]+):)?([0-9]+):([0-9]+)", re.ASCII)
NOT_A_VALUE = frozenset({"", "N/A", "None", "None assigned", "Unknown", "INVALID"})


def field_value(field: str) -> str | None:
    """The field stripped, or None where SLURM printed one of its "no value" words."""
    return None if field.strip() in NOT_A_VALUE else field.strip()


def field_timestamp(field: str) -> datetime | None:
    """A naive datetime (the cluster's local time, as printed), or None."""
    value = field_value(field)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def squeue_elapsed_s(field: str) -> int | None:
    """squeue's %M: "M:SS", "H:MM:SS" or "D-HH:MM:SS"."""
    match = SQUEUE_ELAPSED_PATTERN.fullmatch(field.strip())
    if match is None:
        return None
    days, hours, minutes, seconds = (int(group) if group else 0 for group in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def split_row(line: str, field_count: int, tool: str) -> list[str] | None:
    """The `|`-separated fields of a row, or None (and a warning) if there are not `field_count` of them."""
    fields = line.split("|")
    if len(fields) != field_count:
        logger.warning("slurm_unreadable_row: %s %r", tool, line[:200])
        return None
    return fields
