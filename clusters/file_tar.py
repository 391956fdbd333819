"""Small files as one tar stream, and the argv that unpacks it on the cluster: many files in one round trip."""

from __future__ import annotations

import io
import tarfile
import time


def tar_of(files: dict[str, bytes]) -> bytes:
    """A tar stream of `files` (relative paths, already cleaned by the caller), mode 0644, dated now."""
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, now
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def untar_argv(target_dir: str) -> list[str]:
    """tar reading the stream on stdin into `target_dir`, owned by the member who runs it."""
    return ["tar", "-x", "--no-same-owner", "-f", "-", "-C", target_dir]
