"""The checks every archive member passes, whatever the format: its kind, the paths it claims, the sizes and
compression ratios it declares and those it streams; and its data written, counted and hashed, into the
staging folder.

Knows nothing of archive formats (`tar` and `zip` describe their members as an Entry), of Django, jobs or
clusters.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from jobs.archives.limits import ArchiveLimits
from jobs.archives.names import is_macos_junk, name_parts
from jobs.archives.refusals import ArchiveRefused, bytes_text, corrupt_if_unreadable, quoted

CHUNK_BYTES = 1024 * 1024
# Ratios are enforced only past the first MiB of a member (and of the archive): a small, very repetitive
# file, such as a restraint list of one line repeated, may compress past 200:1 without being a bomb.
RATIO_GRACE_BYTES = 1024 * 1024
FILE_MODE = 0o644


@dataclass(frozen=True)
class Entry:
    name: str  # as the archive spells it
    kind: str  # "file", "folder", "link" or "special"
    declared_bytes: int = 0
    compressed_bytes: int | None = None  # known up front for zip members only
    description: str = ""  # what a link or special file is, for the message


class Unpacking:
    """One call's state: what the archive declared so far, the paths it claimed, and the files written."""

    def __init__(self, stage: Path, limits: ArchiveLimits, *, archive_bytes: int) -> None:
        self.stage = stage
        self.limits = limits
        self.archive_cap_bytes = max(limits.max_ratio * archive_bytes, RATIO_GRACE_BYTES)
        self.entries = 0
        self.declared_bytes = 0
        self.files: set[tuple[str, ...]] = set()
        self.folders: set[tuple[str, ...]] = set()
        self.written: list[tuple[tuple[str, ...], int, str]] = []

    def check_entry_count(self, entries: int) -> None:
        if entries > self.limits.max_files:
            raise ArchiveRefused(
                "ARCHIVE_TOO_MANY_FILES",
                f"The archive holds more than {self.limits.max_files:,} files and folders; "
                "upload only the inputs this job needs.",
            )

    def admit(self, entry: Entry) -> tuple[str, ...] | None:
        """The parts of the path to write a file at, None for an entry not written. Raises ArchiveRefused."""
        self.entries += 1
        self.check_entry_count(self.entries)
        parts = name_parts(entry.name, self.limits)
        if entry.kind == "link":
            raise ArchiveRefused(
                "ARCHIVE_LINK",
                f"{quoted(entry.name)} is {entry.description}; archives may hold only files and folders. "
                "Re-create it with the files themselves in place of links (tar --dereference, zip without -y).",
                entry.name,
            )
        if entry.kind == "special":
            raise ArchiveRefused(
                "ARCHIVE_SPECIAL_FILE",
                f"{quoted(entry.name)} is {entry.description}; archives may hold only files and folders. "
                "Re-create it without it.",
                entry.name,
            )
        if entry.kind == "folder":
            if parts and not is_macos_junk(parts):
                self._claim_folder(parts, entry.name)
            return None  # folders are made for the files in them; empty ones are skipped
        if not parts:
            raise ArchiveRefused(
                "ARCHIVE_BAD_NAME", "The archive holds a file without a name; re-create the archive.", entry.name
            )
        # Skipped files are counted too: tarfile reads through their data all the same.
        self._declare(entry)
        if is_macos_junk(parts):
            return None
        self._claim_file(parts, entry.name)
        return parts

    def write(
        self,
        parts: tuple[str, ...],
        name: str,
        source: IO[bytes],
        *,
        declared_bytes: int,
        compressed_bytes: Callable[[], int] | None,
    ) -> None:
        """Stream one member's data into the staging folder, hashing it. Raises ArchiveRefused.

        `compressed_bytes` gives the member's compressed bytes so far, for its ratio; None when the ratio was
        checked in full before (a zip's sizes are known up front, and no member streams past its own).
        """
        target = self.stage.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        member_bytes = 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(target, flags, FILE_MODE), "wb") as out:
            os.fchmod(out.fileno(), FILE_MODE)  # not the archive's mode, nor what the umask left
            while True:
                with corrupt_if_unreadable(name):
                    chunk = source.read(CHUNK_BYTES)
                if not chunk:
                    break
                member_bytes += len(chunk)
                self._check_streamed(name, member_bytes, declared_bytes, compressed_bytes)
                digest.update(chunk)
                out.write(chunk)
        if member_bytes != declared_bytes:
            raise ArchiveRefused(
                "ARCHIVE_CORRUPT",
                f"{quoted(name)} holds {member_bytes:,} bytes, but the archive says {declared_bytes:,}: "
                "the archive is damaged or was cut short. Upload it again, or re-create it.",
                name,
            )
        self.written.append((parts, member_bytes, digest.hexdigest()))

    def _declare(self, entry: Entry) -> None:
        # The declared sizes are trusted only because they are enforced: a member is refused the moment it
        # streams past its own (_check_streamed), so the limits below hold for the bytes written too.
        self.declared_bytes += entry.declared_bytes
        if self.declared_bytes > self.limits.max_total_bytes:
            raise ArchiveRefused(
                "ARCHIVE_TOO_LARGE",
                f"With {quoted(entry.name)} the archive unpacks to more than "
                f"{bytes_text(self.limits.max_total_bytes)}; upload only the inputs this job needs.",
                entry.name,
            )
        if self.declared_bytes > self.archive_cap_bytes:
            raise self._ratio_refusal(entry.name, f"With {quoted(entry.name)} the archive expands")
        if entry.compressed_bytes is not None and entry.declared_bytes > self._member_cap(entry.compressed_bytes):
            raise self._ratio_refusal(entry.name, f"{quoted(entry.name)} expands")

    def _check_streamed(
        self, name: str, member_bytes: int, declared_bytes: int, compressed_bytes: Callable[[], int] | None
    ) -> None:
        if member_bytes > declared_bytes:
            raise ArchiveRefused(
                "ARCHIVE_CORRUPT",
                f"{quoted(name)} unpacks to more than the {declared_bytes:,} bytes the archive says it holds: "
                "the archive is damaged or forged. Re-create it.",
                name,
            )
        if compressed_bytes is not None and member_bytes > self._member_cap(compressed_bytes()):
            raise self._ratio_refusal(name, f"{quoted(name)} expands")

    def _member_cap(self, compressed_bytes: int) -> float:
        return max(self.limits.max_ratio * compressed_bytes, RATIO_GRACE_BYTES)

    def _ratio_refusal(self, name: str, what_expands: str) -> ArchiveRefused:
        return ArchiveRefused(
            "ARCHIVE_RATIO",
            f"{what_expands} more than {self.limits.max_ratio:g} times its compressed size, as a zip bomb does; "
            "molecular inputs compress far less. Re-create the archive from the input files themselves.",
            name,
        )

    def _claim_file(self, parts: tuple[str, ...], name: str) -> None:
        if parts in self.files:
            raise _duplicate(name, "appears twice in the archive")
        if parts in self.folders:
            raise _duplicate(name, "is both a file and a folder in the archive")
        self._claim_parents(parts, name)
        self.files.add(parts)

    def _claim_folder(self, parts: tuple[str, ...], name: str) -> None:
        if parts in self.files:
            raise _duplicate(name, "is both a file and a folder in the archive")
        self._claim_parents(parts, name)
        self.folders.add(parts)

    def _claim_parents(self, parts: tuple[str, ...], name: str) -> None:
        for depth in range(1, len(parts)):
            parent = parts[:depth]
            if parent in self.files:
                raise _duplicate(name, f"lies in {quoted('/'.join(parent))}, which the archive also holds as a file")
            self.folders.add(parent)


def _duplicate(name: str, what: str) -> ArchiveRefused:
    return ArchiveRefused(
        "ARCHIVE_DUPLICATE", f"{quoted(name)} {what}; rename one of them and re-create the archive.", name
    )
