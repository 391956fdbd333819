"""Unpacking a member's input archive (a CHARMM-GUI .tgz, a .zip, a .tar) into a folder on the portal.

Owns the archive formats and every check on what an archive holds: member names (`names`), member types,
counts, sizes and compression ratios (`members`, within `limits`), each format's reading (`tar`, `zip`) and
the all-or-nothing unpacking into place (`unpack`). Data streams through in 1 MiB chunks (never a whole
member in memory), is counted and hashed as it is written, and nothing lands outside `destination`. Files are
first written to a hidden staging folder inside `destination` and moved into place only when the whole
archive passed, so a refused archive leaves nothing behind.

Knows nothing of Django, jobs or clusters: callers turn ArchiveRefused into their own errors.
"""

from jobs.archives.limits import ArchiveLimits
from jobs.archives.refusals import ArchiveRefused
from jobs.archives.unpack import UnpackedFile, archive_kind, unpack_archive

__all__ = ["ArchiveLimits", "ArchiveRefused", "UnpackedFile", "archive_kind", "unpack_archive"]
