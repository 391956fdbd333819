"""Tar and tar.gz archives, read in one streaming pass: each member described to `members` and its data
streamed through, with what tarfile may read for headers capped and gzip's CRC and length checked at the end.
tarfile's own extraction is never used.

Knows nothing of Django, jobs or clusters.
"""

from __future__ import annotations

import gzip
import tarfile
from collections.abc import Callable
from contextlib import ExitStack
from typing import BinaryIO

from jobs.archives.members import Entry, Unpacking
from jobs.archives.refusals import ArchiveRefused, bytes_text, corrupt_if_unreadable, quoted

# A tar.gz member's compressed size is measured as the compressed bytes read while it streams; gzip reads
# ahead (8 KiB in CPython 3.11), so the start of a member may already be read when it begins.
READ_AHEAD_SLACK_BYTES = 64 * 1024
# What tarfile may read for one member's headers (pax records, GNU long names, sparse maps): it holds
# them in memory, so an archive with a 1 GB pax record must be stopped before tarfile reads it all.
HEADER_MAX_BYTES = 1024 * 1024
# The zeros tar pads its end with, read only to make gzip check its CRC and length at the very end.
TRAILER_MAX_BYTES = 1024 * 1024


class _CountingReader:
    """A read-only stream that counts the bytes through it and can refuse reading past a limit."""

    def __init__(self, stream: BinaryIO | gzip.GzipFile) -> None:
        self._stream = stream
        self.bytes_read = 0
        self.read_limit: int | None = None

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.bytes_read += len(data)
        if self.read_limit is not None and self.bytes_read > self.read_limit:
            raise ArchiveRefused(
                "ARCHIVE_CORRUPT",
                f"A member's tar headers (long names, pax records) run over {bytes_text(HEADER_MAX_BYTES)}; "
                "the archive is damaged or not a plain archive of files. Re-create it.",
            )
        return data


def unpack_tar(raw: BinaryIO, unpacking: Unpacking, *, is_gzipped: bool) -> None:
    # Stream mode ("r|"): one pass, members in order, each one's data read once. tarfile's extraction
    # (extract, extractall, their filters) is never used; every check is ours.
    archive_stream = _CountingReader(raw)
    with ExitStack() as stack:
        tar_stream = archive_stream
        if is_gzipped:
            # gzip.GzipFile rather than tarfile's own "r|gz": it checks the CRC and length at the end.
            tar_stream = _CountingReader(stack.enter_context(gzip.GzipFile(fileobj=archive_stream, mode="rb")))
        with corrupt_if_unreadable():
            tar = stack.enter_context(
                tarfile.open(fileobj=tar_stream, mode="r|", tarinfo=_header_checked_tarinfo(tar_stream))
            )
        while True:
            with corrupt_if_unreadable():
                member = tar.next()
            if member is None:
                break
            parts = unpacking.admit(_tar_entry(member))
            if parts is None:
                continue
            if member.issparse():
                raise ArchiveRefused(
                    "ARCHIVE_UNSUPPORTED",
                    f"{quoted(member.name)} is stored as a sparse file; re-create the archive without --sparse.",
                    member.name,
                )
            with corrupt_if_unreadable(member.name):
                source = tar.extractfile(member)
            assert source is not None  # a regular member always has data
            with source:
                unpacking.write(
                    parts,
                    member.name,
                    source,
                    declared_bytes=member.size,
                    compressed_bytes=_compressed_since(archive_stream),
                )
        if is_gzipped:
            _read_gzip_trailer(tar_stream)


def _tar_entry(member: tarfile.TarInfo) -> Entry:
    if member.issym():
        return Entry(member.name, "link", description=f"a symbolic link (to {quoted(member.linkname)})")
    if member.islnk():
        return Entry(member.name, "link", description=f"a hard link (to {quoted(member.linkname)})")
    if member.isdir():
        return Entry(member.name, "folder")
    if member.isreg():
        return Entry(member.name, "file", declared_bytes=member.size)
    if member.ischr():
        return Entry(member.name, "special", description="a character device")
    if member.isblk():
        return Entry(member.name, "special", description="a block device")
    if member.isfifo():
        return Entry(member.name, "special", description="a FIFO")
    return Entry(member.name, "special", description=f"an entry of tar type {member.type!r}")


def _header_checked_tarinfo(stream: _CountingReader) -> type[tarfile.TarInfo]:
    """A TarInfo class that caps what tarfile reads for one member's headers and refuses broken headers.

    tarfile ends an archive silently at a header it cannot parse (a member whose size is wrong, an upload
    cut short between two members); only a zero block, tar's end marker, may end it here.
    """

    class HeaderCheckedTarInfo(tarfile.TarInfo):
        @classmethod
        def fromtarfile(cls, tar: tarfile.TarFile) -> tarfile.TarInfo:
            if stream.read_limit is not None:  # a pax record or long name reading the header it belongs to
                return super().fromtarfile(tar)
            stream.read_limit = stream.bytes_read + HEADER_MAX_BYTES
            try:
                return super().fromtarfile(tar)
            except tarfile.EOFHeaderError:
                raise
            except tarfile.HeaderError as exc:
                if tar.offset == 0:
                    raise ArchiveRefused(
                        "ARCHIVE_WRONG_KIND", "The file holds no tar archive; upload it under its real name."
                    ) from exc
                raise ArchiveRefused(
                    "ARCHIVE_CORRUPT",
                    "The archive breaks off after its last complete member: it is damaged or was cut short "
                    "while uploading. Upload it again, or re-create it.",
                ) from exc
            finally:
                stream.read_limit = None

    return HeaderCheckedTarInfo


def _compressed_since(counter: _CountingReader) -> Callable[[], int]:
    start = counter.bytes_read
    return lambda: counter.bytes_read - start + READ_AHEAD_SLACK_BYTES


def _read_gzip_trailer(tar_stream: _CountingReader) -> None:
    """Read on past tar's end marker to gzip's end, where it checks CRC and length. Raises ArchiveRefused."""
    trailer_bytes = 0
    while True:
        with corrupt_if_unreadable():
            chunk = tar_stream.read(64 * 1024)
        if not chunk:
            return
        trailer_bytes += len(chunk)
        if trailer_bytes > TRAILER_MAX_BYTES:
            raise ArchiveRefused(
                "ARCHIVE_CORRUPT",
                "The archive has unexpected data after its end; re-create it with tar and gzip alone.",
            )
