"""The error every NAMD input reader raises, and how its messages quote a line of the file.

Knows nothing of any one format, of Django or of the cluster.
"""

from __future__ import annotations


class InputFileInvalid(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def excerpt(text: bytes, limit: int = 40) -> str:
    """A line as a message may quote it: decoded, stripped, cut."""
    shown = text.decode("latin-1").strip()
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
