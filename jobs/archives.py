"""Unpacking a member's input archive (a CHARMM-GUI .tgz, a .zip, a .tar) into a folder on the portal.

Owns the archive formats and every check on what an archive holds: member names, member types, counts,
sizes and compression ratios. Data streams through in 1 MiB chunks (never a whole member in memory),
is counted and hashed as it is written, and nothing lands outside `destination`. Files are first
written to a hidden staging folder inside `destination` and moved into place only when the whole
archive passed, so a refused archive leaves nothing behind.

Knows nothing of Django, jobs or clusters: callers turn ArchiveRefused into their own errors.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
import stat
import struct
import tarfile
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

CHUNK_BYTES = 1024 * 1024
# Ratios are enforced only past the first MiB of a member (and of the archive): a small, very repetitive
# file, such as a restraint list of one line repeated, may compress past 200:1 without being a bomb.
RATIO_GRACE_BYTES = 1024 * 1024
# A tar.gz member's compressed size is measured as the compressed bytes read while it streams; gzip reads
# ahead (8 KiB in CPython 3.11), so the start of a member may already be read when it begins.
READ_AHEAD_SLACK_BYTES = 64 * 1024
# What tarfile may read for one member's headers (pax records, GNU long names, sparse maps): it holds
# them in memory, so an archive with a 1 GB pax record must be stopped before tarfile reads it all.
HEADER_MAX_BYTES = 1024 * 1024
# The zeros tar pads its end with, read only to make gzip check its CRC and length at the very end.
TRAILER_MAX_BYTES = 1024 * 1024
NAME_PART_MAX_BYTES = 255  # NAME_MAX of Linux file systems
FILE_MODE = 0o644
STAGE_PREFIX = ".unpacking-"
WINDOWS_ABSOLUTE_RE = re.compile(r"[A-Za-z]:(/|$)")
ARCHIVE_KINDS = ("tar.gz", "tar", "zip")
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a first member, or the end record of an empty zip
ZIP_READABLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
ZIP_FLAG_ENCRYPTED = 0x1
ZIP_FLAG_PATCHED_DATA = 0x20
ZIP_FLAG_STRONG_ENCRYPTION = 0x40
MACOS_JUNK_FOLDER = "__MACOSX"
MACOS_JUNK_FILE = ".DS_Store"
MACOS_RESOURCE_FORK_PREFIX = "._"


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int = 10 * 1024**3  # sum of unpacked sizes
    max_files: int = 10_000  # entries of any kind: files, folders, skipped macOS junk
    max_ratio: float = 200.0  # unpacked bytes / archive bytes, on the whole and per member
    max_path_length: int = 255  # characters of a member's name in the archive
    max_depth: int = 16  # folders plus the file name


DEFAULT_LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class UnpackedFile:
    relpath: str  # posix, normalized, relative, common root stripped: "toppar/par_all36m_prot.prm"
    path: Path  # where it was written under `destination`
    size_bytes: int
    sha256: str


class ArchiveRefused(ValueError):
    """An archive the portal will not unpack: a stable `code`, a `message` saying what to do, the `member`."""

    def __init__(self, code: str, message: str, member: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.member = _printable(member)


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
            unpacking = _Unpacking(stage, limits, archive_bytes=os.fstat(raw.fileno()).st_size)
            if kind == "zip":
                _unpack_zip(raw, unpacking)
            else:
                _unpack_tar(raw, unpacking, is_gzipped=kind == "tar.gz")
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


# ------------------------------------------------------------------ checks shared by every format


@dataclass(frozen=True)
class _Entry:
    name: str  # as the archive spells it
    kind: str  # "file", "folder", "link" or "special"
    declared_bytes: int = 0
    compressed_bytes: int | None = None  # known up front for zip members only
    description: str = ""  # what a link or special file is, for the message


class _Unpacking:
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

    def admit(self, entry: _Entry) -> tuple[str, ...] | None:
        """The parts of the path to write a file at, None for an entry not written. Raises ArchiveRefused."""
        self.entries += 1
        self.check_entry_count(self.entries)
        parts = _name_parts(entry.name, self.limits)
        if entry.kind == "link":
            raise ArchiveRefused(
                "ARCHIVE_LINK",
                f"{_quoted(entry.name)} is {entry.description}; archives may hold only files and folders. "
                "Re-create it with the files themselves in place of links (tar --dereference, zip without -y).",
                entry.name,
            )
        if entry.kind == "special":
            raise ArchiveRefused(
                "ARCHIVE_SPECIAL_FILE",
                f"{_quoted(entry.name)} is {entry.description}; archives may hold only files and folders. "
                "Re-create it without it.",
                entry.name,
            )
        if entry.kind == "folder":
            if parts and not _is_macos_junk(parts):
                self._claim_folder(parts, entry.name)
            return None  # folders are made for the files in them; empty ones are skipped
        if not parts:
            raise ArchiveRefused(
                "ARCHIVE_BAD_NAME", "The archive holds a file without a name; re-create the archive.", entry.name
            )
        # Skipped files are counted too: tarfile reads through their data all the same.
        self._declare(entry)
        if _is_macos_junk(parts):
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
                with _corrupt_if_unreadable(name):
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
                f"{_quoted(name)} holds {member_bytes:,} bytes, but the archive says {declared_bytes:,}: "
                "the archive is damaged or was cut short. Upload it again, or re-create it.",
                name,
            )
        self.written.append((parts, member_bytes, digest.hexdigest()))

    def _declare(self, entry: _Entry) -> None:
        # The declared sizes are trusted only because they are enforced: a member is refused the moment it
        # streams past its own (_check_streamed), so the limits below hold for the bytes written too.
        self.declared_bytes += entry.declared_bytes
        if self.declared_bytes > self.limits.max_total_bytes:
            raise ArchiveRefused(
                "ARCHIVE_TOO_LARGE",
                f"With {_quoted(entry.name)} the archive unpacks to more than "
                f"{_bytes_text(self.limits.max_total_bytes)}; upload only the inputs this job needs.",
                entry.name,
            )
        if self.declared_bytes > self.archive_cap_bytes:
            raise self._ratio_refusal(entry.name, f"With {_quoted(entry.name)} the archive expands")
        if entry.compressed_bytes is not None and entry.declared_bytes > self._member_cap(entry.compressed_bytes):
            raise self._ratio_refusal(entry.name, f"{_quoted(entry.name)} expands")

    def _check_streamed(
        self, name: str, member_bytes: int, declared_bytes: int, compressed_bytes: Callable[[], int] | None
    ) -> None:
        if member_bytes > declared_bytes:
            raise ArchiveRefused(
                "ARCHIVE_CORRUPT",
                f"{_quoted(name)} unpacks to more than the {declared_bytes:,} bytes the archive says it holds: "
                "the archive is damaged or forged. Re-create it.",
                name,
            )
        if compressed_bytes is not None and member_bytes > self._member_cap(compressed_bytes()):
            raise self._ratio_refusal(name, f"{_quoted(name)} expands")

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
                raise _duplicate(name, f"lies in {_quoted('/'.join(parent))}, which the archive also holds as a file")
            self.folders.add(parent)


def _name_parts(name: str, limits: ArchiveLimits) -> tuple[str, ...]:
    """A member's name as normalized path parts ("." and empty parts dropped). Raises ArchiveRefused."""
    if len(name) > limits.max_path_length:
        raise _bad_name(name, f"is longer than {limits.max_path_length} characters; shorten its folders or its name")
    if any(_is_forbidden_character(character) for character in name):
        raise _bad_name(name, "holds a control character, a line break or a backslash; rename it")
    if name.startswith("/") or WINDOWS_ABSOLUTE_RE.match(name):
        raise ArchiveRefused(
            "ARCHIVE_ABSOLUTE_PATH",
            f"{_quoted(name)} is an absolute path; archives must hold paths relative to their folder. "
            "Re-create the archive from inside the folder that holds your inputs.",
            name,
        )
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise ArchiveRefused(
            "ARCHIVE_PATH_ESCAPE",
            f"{_quoted(name)} has a '..' in its path, which could point outside its folder; "
            "re-create the archive from inside the folder that holds your inputs.",
            name,
        )
    if len(parts) > limits.max_depth:
        raise _bad_name(name, f"lies more than {limits.max_depth} folders deep; move it up")
    if any(len(part.encode()) > NAME_PART_MAX_BYTES for part in parts):
        raise _bad_name(name, f"has a file or folder name longer than {NAME_PART_MAX_BYTES} bytes; shorten it")
    return parts


def _is_forbidden_character(character: str) -> bool:
    # Category C: control and format characters, and the surrogates tarfile leaves for bytes that aren't
    # UTF-8; Zl/Zp: Unicode's own line breaks. A backslash is Windows' separator, never part of a name here.
    category = unicodedata.category(character)
    return character == "\\" or category[0] == "C" or category in ("Zl", "Zp")


def _is_macos_junk(parts: tuple[str, ...]) -> bool:
    return (
        MACOS_JUNK_FOLDER in parts or parts[-1] == MACOS_JUNK_FILE or parts[-1].startswith(MACOS_RESOURCE_FORK_PREFIX)
    )


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
                f"{_quoted(name)} already exists where the archive unpacks; remove it, or rename it in the archive.",
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


# Everything the archive libraries raise on damaged data; only reads from the archive run under it.
_UNREADABLE = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    NotImplementedError,
    OSError,  # gzip.BadGzipFile, and bz2's "Invalid data stream"
    ValueError,  # zip names flagged UTF-8 that are not, numbers in a tar sparse map that are not
)


@contextmanager
def _corrupt_if_unreadable(member: str = "") -> Iterator[None]:
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


# ------------------------------------------------------------------ tar and tar.gz


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
                f"A member's tar headers (long names, pax records) run over {_bytes_text(HEADER_MAX_BYTES)}; "
                "the archive is damaged or not a plain archive of files. Re-create it.",
            )
        return data


def _unpack_tar(raw: BinaryIO, unpacking: _Unpacking, *, is_gzipped: bool) -> None:
    # Stream mode ("r|"): one pass, members in order, each one's data read once. tarfile's extraction
    # (extract, extractall, their filters) is never used; every check is ours.
    archive_stream = _CountingReader(raw)
    with ExitStack() as stack:
        tar_stream = archive_stream
        if is_gzipped:
            # gzip.GzipFile rather than tarfile's own "r|gz": it checks the CRC and length at the end.
            tar_stream = _CountingReader(stack.enter_context(gzip.GzipFile(fileobj=archive_stream, mode="rb")))
        with _corrupt_if_unreadable():
            tar = stack.enter_context(
                tarfile.open(fileobj=tar_stream, mode="r|", tarinfo=_header_checked_tarinfo(tar_stream))
            )
        while True:
            with _corrupt_if_unreadable():
                member = tar.next()
            if member is None:
                break
            parts = unpacking.admit(_tar_entry(member))
            if parts is None:
                continue
            if member.issparse():
                raise ArchiveRefused(
                    "ARCHIVE_UNSUPPORTED",
                    f"{_quoted(member.name)} is stored as a sparse file; re-create the archive without --sparse.",
                    member.name,
                )
            with _corrupt_if_unreadable(member.name):
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


def _tar_entry(member: tarfile.TarInfo) -> _Entry:
    if member.issym():
        return _Entry(member.name, "link", description=f"a symbolic link (to {_quoted(member.linkname)})")
    if member.islnk():
        return _Entry(member.name, "link", description=f"a hard link (to {_quoted(member.linkname)})")
    if member.isdir():
        return _Entry(member.name, "folder")
    if member.isreg():
        return _Entry(member.name, "file", declared_bytes=member.size)
    if member.ischr():
        return _Entry(member.name, "special", description="a character device")
    if member.isblk():
        return _Entry(member.name, "special", description="a block device")
    if member.isfifo():
        return _Entry(member.name, "special", description="a FIFO")
    return _Entry(member.name, "special", description=f"an entry of tar type {member.type!r}")


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
        with _corrupt_if_unreadable():
            chunk = tar_stream.read(64 * 1024)
        if not chunk:
            return
        trailer_bytes += len(chunk)
        if trailer_bytes > TRAILER_MAX_BYTES:
            raise ArchiveRefused(
                "ARCHIVE_CORRUPT",
                "The archive has unexpected data after its end; re-create it with tar and gzip alone.",
            )


# ------------------------------------------------------------------ zip

_ZIP_END = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP64_END_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")
_ZIP_CENTRAL_ENTRY = struct.Struct("<4s24x3H12x")  # signature, name, extra and comment lengths


def _unpack_zip(raw: BinaryIO, unpacking: _Unpacking) -> None:
    # A zip lists every member up front: all of them are checked before a byte is written.
    with _corrupt_if_unreadable():
        unpacking.check_entry_count(_zip_central_directory_entries(raw, stop_after=unpacking.limits.max_files))
    with _corrupt_if_unreadable():
        archive = zipfile.ZipFile(raw)
    with archive:
        planned = []
        for info in archive.infolist():
            parts = unpacking.admit(_zip_entry(info))
            if parts is not None:
                _check_zip_readable(info)
                planned.append((parts, info))
        for parts, info in planned:
            with _corrupt_if_unreadable(info.orig_filename):
                source = archive.open(info)
            with source:
                unpacking.write(
                    parts,
                    info.orig_filename,
                    source,
                    declared_bytes=info.file_size,
                    compressed_bytes=None,
                )


def _zip_entry(info: zipfile.ZipInfo) -> _Entry:
    # orig_filename: zipfile cuts `filename` at a NUL, which must be seen to be refused.
    name = info.orig_filename
    mode = info.external_attr >> 16  # Unix mode bits, when the zip was made on Unix
    if stat.S_ISLNK(mode):
        return _Entry(name, "link", description="a symbolic link")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return _Entry(name, "special", description=_special_mode_text(mode))
    if name.endswith("/") or stat.S_ISDIR(mode):
        return _Entry(name, "folder")
    return _Entry(name, "file", declared_bytes=info.file_size, compressed_bytes=info.compress_size)


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
            f"{_quoted(info.orig_filename)} is encrypted; upload the zip without a password.",
            info.orig_filename,
        )
    if info.compress_type not in ZIP_READABLE_METHODS or info.flag_bits & ZIP_FLAG_PATCHED_DATA:
        raise ArchiveRefused(
            "ARCHIVE_UNSUPPORTED",
            f"{_quoted(info.orig_filename)} uses a compression method the portal cannot read "
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


# ------------------------------------------------------------------ messages


def _duplicate(name: str, what: str) -> ArchiveRefused:
    return ArchiveRefused(
        "ARCHIVE_DUPLICATE", f"{_quoted(name)} {what}; rename one of them and re-create the archive.", name
    )


def _bad_name(name: str, what: str) -> ArchiveRefused:
    return ArchiveRefused("ARCHIVE_BAD_NAME", f"{_quoted(name)} {what}, and re-create the archive.", name)


def _printable(name: str) -> str:
    """A member name safe to show and log: non-printable characters escaped, at most 300 characters."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name[:300])
    return shown + ("..." if len(name) > 300 else "")


def _quoted(name: str) -> str:
    return f"'{_printable(name)}'"


def _bytes_text(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"
