"""Text PostgreSQL cannot store: NUL (U+0000, refused by `text` columns) and lone surrogates (not UTF-8).

Owns the rule and the walk over decoded input (paths, query strings, form fields, JSON bodies); never
knows where the input came from beyond the label it is given.
"""

from __future__ import annotations

import re
from typing import Any

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
PROBLEM = "contains a NUL character or a lone surrogate, which cannot be stored"


def unstorable_fields(value: Any, where: str) -> list[str]:
    """The labels (e.g. `body.values.name`) of every string, key included, in `value` that cannot be stored."""
    if isinstance(value, str):
        return [where] if UNSTORABLE.search(value) else []
    if isinstance(value, dict):
        found: list[str] = []
        for key, item in value.items():
            label = f"{where}.{key}" if isinstance(key, str) and not UNSTORABLE.search(key) else where
            found += unstorable_fields(key, where) + unstorable_fields(item, label)
        return found
    if isinstance(value, list | tuple):
        return [label for index, item in enumerate(value) for label in unstorable_fields(item, f"{where}.{index}")]
    return []
