"""The limits an archive must stay within to be unpacked, and their defaults.

Knows nothing of archive formats, of Django, jobs or clusters.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int = 10 * 1024**3  # sum of unpacked sizes
    max_files: int = 10_000  # entries of any kind: files, folders, skipped macOS junk
    max_ratio: float = 200.0  # unpacked bytes / archive bytes, on the whole and per member
    max_path_length: int = 255  # characters of a member's name in the archive
    max_depth: int = 16  # folders plus the file name


DEFAULT_LIMITS = ArchiveLimits()
