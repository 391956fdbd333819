"""ArchiveRefused, the one error of archive unpacking; the library errors on damaged data that become
ARCHIVE_CORRUPT; and how its messages show member names and sizes.

Knows nothing of what is checked, of Django, jobs or clusters.
"""

from __future__ import annotations

import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager


class ArchiveRefused(ValueError):
    """An archive the portal will not unpack: a stable `code`, a `message` saying what to do, the `member`."""

    def __init__(self, code: str, message: str, member: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.member = _printable(member)


# Everything the archive libraries raise on damaged data; only reads from the archive run under it.
_UNREADABLE = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    NotImplementedError,  # zipfile's answer to a compression method (or zip version) it cannot read; not a stub
    OSError,  # gzip.BadGzipFile, and bz2's "Invalid data stream"
    ValueError,  # zip names flagged UTF-8 that are not, numbers in a tar sparse map that are not
)


@contextmanager
def corrupt_if_unreadable(member: str = "") -> Iterator[None]:
    try:
        yield
    except ArchiveRefused:
        raise
    except _UNREADABLE as exc:
        raise ArchiveRefused(
            "ARCHIVE_CORRUPT",
            "The archive is damaged or was cut short while uploading; upload it again, or re-create it.",
            member,
        ) from exc


def _printable(name: str) -> str:
    """A member name safe to show and log: non-printable characters escaped, at most 300 characters."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name[:300])
    return shown + ("..." if len(name) > 300 else "")


def quoted(name: str) -> str:
    return f"'{_printable(name)}'"


def bytes_text(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"
