"""Zip archives: the central directory counted before zipfile loads it, every member described to `members`
and checked readable (not encrypted, a compression method the portal reads) before a byte is written.

Knows nothing of Django, jobs or clusters.
"""

from __future__ import annotations

import os
import stat
import struct
import zipfile
from typing import BinaryIO

from jobs.archives.members import Entry, Unpacking
from jobs.archives.refusals import ArchiveRefused, corrupt_if_unreadable, quoted

ZIP_READABLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
ZIP_FLAG_ENCRYPTED = 0x1
ZIP_FLAG_PATCHED_DATA = 0x20
ZIP_FLAG_STRONG_ENCRYPTION = 0x40

_ZIP_END = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP64_END_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")
_ZIP_CENTRAL_ENTRY = struct.Struct("<4s24x3H12x")  # signature, name, extra and comment lengths


def unpack_zip(raw: BinaryIO, unpacking: Unpacking) -> None:
    # A zip lists every member up front: all of them are checked before a byte is written.
    with corrupt_if_unreadable():
        unpacking.check_entry_count(_zip_central_directory_entries(raw, stop_after=unpacking.limits.max_files))
    with corrupt_if_unreadable():
        archive = zipfile.ZipFile(raw)
    with archive:
        planned = []
        for info in archive.infolist():
            parts = unpacking.admit(_zip_entry(info))
            if parts is not None:
                _check_zip_readable(info)
                planned.append((parts, info))
        for parts, info in planned:
            with corrupt_if_unreadable(info.orig_filename):
                source = archive.open(info)
            with source:
                unpacking.write(
                    parts,
                    info.orig_filename,
                    source,
                    declared_bytes=info.file_size,
                    compressed_bytes=None,
                )


def _zip_entry(info: zipfile.ZipInfo) -> Entry:
    # orig_filename: zipfile cuts `filename` at a NUL, which must be seen to be refused.
    name = info.orig_filename
    mode = info.external_attr >> 16  # Unix mode bits, when the zip was made on Unix
    if stat.S_ISLNK(mode):
        return Entry(name, "link", description="a symbolic link")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return Entry(name, "special", description=_special_mode_text(mode))
    if name.endswith("/") or stat.S_ISDIR(mode):
        return Entry(name, "folder")
    return Entry(name, "file", declared_bytes=info.file_size, compressed_bytes=info.compress_size)


def _special_mode_text(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _check_zip_readable(info: zipfile.ZipInfo) -> None:
    if info.flag_bits & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_STRONG_ENCRYPTION):
        raise ArchiveRefused(
            "ARCHIVE_ENCRYPTED",
            f"{quoted(info.orig_filename)} is encrypted; upload the zip without a password.",
            info.orig_filename,
        )
    if info.compress_type not in ZIP_READABLE_METHODS or info.flag_bits & ZIP_FLAG_PATCHED_DATA:
        raise ArchiveRefused(
            "ARCHIVE_UNSUPPORTED",
            f"{quoted(info.orig_filename)} uses a compression method the portal cannot read "
            f"(zip method {info.compress_type}); re-create the zip with standard (Deflate) compression.",
            info.orig_filename,
        )


def _zip_central_directory_entries(raw: BinaryIO, *, stop_after: int) -> int:
    """Members in a zip's central directory, counted from its records before zipfile loads them all.

    zipfile holds one ZipInfo per record, and a small zip can list millions. Counting stops past
    `stop_after`; 0 when the end records aren't where they should be (zipfile then says why).
    """
    archive_bytes = raw.seek(0, os.SEEK_END)
    tail_bytes = min(archive_bytes, _ZIP_END.size + 0xFFFF)  # the end record, then a comment of up to 64 KiB
    raw.seek(archive_bytes - tail_bytes)
    tail = raw.read(tail_bytes)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _ZIP_END.size > len(tail):
        return 0
    directory_end = archive_bytes - tail_bytes + at
    directory_bytes = _ZIP_END.unpack_from(tail, at)[5]
    locator_at = directory_end - _ZIP64_END_LOCATOR.size
    if locator_at >= _ZIP64_END.size:
        raw.seek(locator_at)
        if raw.read(4) == b"PK\x06\x07":  # zip64: the directory's real size is in the zip64 end record
            directory_end = locator_at - _ZIP64_END.size
            raw.seek(directory_end)
            record = raw.read(_ZIP64_END.size)
            if not record.startswith(b"PK\x06\x06"):
                return 0
            directory_bytes = _ZIP64_END.unpack(record)[8]
    position = directory_end - directory_bytes
    entries = 0
    while position >= 0 and position + _ZIP_CENTRAL_ENTRY.size <= directory_end and entries <= stop_after:
        raw.seek(position)
        signature, name_bytes, extra_bytes, comment_bytes = _ZIP_CENTRAL_ENTRY.unpack(raw.read(_ZIP_CENTRAL_ENTRY.size))
        if signature != b"PK\x01\x02":
            break
        position += _ZIP_CENTRAL_ENTRY.size + name_bytes + extra_bytes + comment_bytes
        entries += 1
    return entries
