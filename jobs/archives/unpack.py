"""One archive unpacked, all or nothing: its kind named and sniffed, its format read into a staging folder
inside `destination`, the one common top folder stripped, and the result moved into place; on any failure
nothing half-unpacked survives.

Knows nothing of Django, jobs or clusters.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from jobs.archives.limits import DEFAULT_LIMITS, ArchiveLimits
from jobs.archives.members import Unpacking
from jobs.archives.refusals import ArchiveRefused, quoted
from jobs.archives.tar import unpack_tar
from jobs.archives.zip import unpack_zip

STAGE_PREFIX = ".unpacking-"
ARCHIVE_KINDS = ("tar.gz", "tar", "zip")
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a first member, or the end record of an empty zip


@dataclass(frozen=True)
class UnpackedFile:
    relpath: str  # posix, normalized, relative, common root stripped: "toppar/par_all36m_prot.prm"
    path: Path  # where it was written under `destination`
    size_bytes: int
    sha256: str


def archive_kind(filename: str) -> str | None:
    """The archive kind a file name announces ("tar.gz", "tar" or "zip"), None for anything else."""
    name = filename.lower()
    if name.endswith((".tgz", ".tar.gz")):
        return "tar.gz"
    if name.endswith(".tar"):
        return "tar"
    if name.endswith(".zip"):
        return "zip"
    return None


def unpack_archive(
    archive: Path,
    destination: Path,
    *,
    kind: str,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    strip_common_root: bool = True,
) -> list[UnpackedFile]:
    """Unpack `archive` into `destination`, all or nothing; sorted by relpath. Raises ArchiveRefused.

    `destination` is created if missing (and removed again on refusal); what it already holds is never
    overwritten (ARCHIVE_DESTINATION_CONFLICT). An unknown `kind` is a caller's bug: a plain ValueError.
    Codes: ARCHIVE_ABSOLUTE_PATH, _PATH_ESCAPE, _LINK, _SPECIAL_FILE, _BAD_NAME, _TOO_MANY_FILES, _TOO_LARGE,
    _RATIO, _DUPLICATE, _CORRUPT, _ENCRYPTED, _UNSUPPORTED, _WRONG_KIND, _DESTINATION_CONFLICT.
    """
    if kind not in ARCHIVE_KINDS:
        raise ValueError(f"unknown archive kind {kind!r}, expected one of {ARCHIVE_KINDS}")
    destination_existed = destination.exists()
    destination.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=destination))
    moved: list[Path] = []
    try:
        with archive.open("rb") as raw:
            _check_kind(raw, kind)
            unpacking = Unpacking(stage, limits, archive_bytes=os.fstat(raw.fileno()).st_size)
            if kind == "zip":
                unpack_zip(raw, unpacking)
            else:
                unpack_tar(raw, unpacking, is_gzipped=kind == "tar.gz")
        root = _common_root(unpacking.written) if strip_common_root else ()
        _move_into_place(stage.joinpath(*root), destination, moved)
    except BaseException:  # refused, a full disk or an interrupt alike: nothing half-unpacked survives
        for path in moved:
            _remove(path)
        shutil.rmtree(stage, ignore_errors=True)
        if not destination_existed:
            with suppress(OSError):  # the reason we are cleaning up matters more than a cleanup that failed
                destination.rmdir()
        raise
    shutil.rmtree(stage)
    files = []
    for parts, size_bytes, sha256 in unpacking.written:
        relparts = parts[len(root) :]
        files.append(UnpackedFile("/".join(relparts), destination.joinpath(*relparts), size_bytes, sha256))
    return sorted(files, key=lambda file: file.relpath)


def _common_root(written: list[tuple[tuple[str, ...], int, str]]) -> tuple[str, ...]:
    tops = {parts[0] for parts, _, _ in written}
    if len(tops) == 1 and all(len(parts) > 1 for parts, _, _ in written):
        return (tops.pop(),)
    return ()


def _move_into_place(unpacked: Path, destination: Path, moved: list[Path]) -> None:
    """Move the staged top-level entries into `destination`. Raises ArchiveRefused (DESTINATION_CONFLICT)."""
    names = sorted(os.listdir(unpacked))
    for name in names:
        if os.path.lexists(destination / name):
            raise ArchiveRefused(
                "ARCHIVE_DESTINATION_CONFLICT",
                f"{quoted(name)} already exists where the archive unpacks; remove it, or rename it in the archive.",
                name,
            )
    for name in names:
        os.rename(unpacked / name, destination / name)
        moved.append(destination / name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _check_kind(raw: BinaryIO, kind: str) -> None:
    head = raw.read(4)
    raw.seek(0)
    if kind == "zip" and head not in ZIP_MAGICS:
        raise ArchiveRefused("ARCHIVE_WRONG_KIND", "The file is not a .zip archive; upload it under its real name.")
    if kind == "tar.gz" and not head.startswith(GZIP_MAGIC):
        raise ArchiveRefused(
            "ARCHIVE_WRONG_KIND", "The file is not a gzip-compressed tar (.tgz); upload it under its real name."
        )
    if kind == "tar" and head.startswith(GZIP_MAGIC):
        raise ArchiveRefused("ARCHIVE_WRONG_KIND", "The file is gzip-compressed; name it .tgz or .tar.gz.")
