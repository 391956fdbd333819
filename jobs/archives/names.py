"""Member names: what a name in an archive may be, normalized to the path parts it is written at, and the
macOS junk (__MACOSX, .DS_Store, ._ files) that is skipped.

Knows nothing of archive formats, of Django, jobs or clusters.
"""

from __future__ import annotations

import re
import unicodedata

from jobs.archives.limits import ArchiveLimits
from jobs.archives.refusals import ArchiveRefused, quoted

NAME_PART_MAX_BYTES = 255  # NAME_MAX of Linux file systems
WINDOWS_ABSOLUTE_RE = re.compile(r"[A-Za-z]:(/|$)")
MACOS_JUNK_FOLDER = "__MACOSX"
MACOS_JUNK_FILE = ".DS_Store"
MACOS_RESOURCE_FORK_PREFIX = "._"


def name_parts(name: str, limits: ArchiveLimits) -> tuple[str, ...]:
    """A member's name as normalized path parts ("." and empty parts dropped). Raises ArchiveRefused."""
    if len(name) > limits.max_path_length:
        raise _bad_name(name, f"is longer than {limits.max_path_length} characters; shorten its folders or its name")
    if any(_is_forbidden_character(character) for character in name):
        raise _bad_name(name, "holds a control character, a line break or a backslash; rename it")
    if name.startswith("/") or WINDOWS_ABSOLUTE_RE.match(name):
        raise ArchiveRefused(
            "ARCHIVE_ABSOLUTE_PATH",
            f"{quoted(name)} is an absolute path; archives must hold paths relative to their folder. "
            "Re-create the archive from inside the folder that holds your inputs.",
            name,
        )
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise ArchiveRefused(
            "ARCHIVE_PATH_ESCAPE",
            f"{quoted(name)} has a '..' in its path, which could point outside its folder; "
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


def is_macos_junk(parts: tuple[str, ...]) -> bool:
    return (
        MACOS_JUNK_FOLDER in parts or parts[-1] == MACOS_JUNK_FILE or parts[-1].startswith(MACOS_RESOURCE_FORK_PREFIX)
    )


def _bad_name(name: str, what: str) -> ArchiveRefused:
    return ArchiveRefused("ARCHIVE_BAD_NAME", f"{quoted(name)} {what}, and re-create the archive.", name)
