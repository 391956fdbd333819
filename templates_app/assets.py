"""Template assets on the portal's disk: files every job of a template gets (CHARMM-GUI's toppar/).

Stored once by content under `<FILE_STORE>/template-assets/<sha256[:2]>/<sha256>`, so versions and
templates that ship the same file share one copy, and a stored asset never changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StoredAsset:
    relpath: str
    sha256: str
    size_bytes: int
    stored_path: str


def asset_root() -> Path:
    return Path(settings.FILE_STORE) / "template-assets"


def store_asset(relpath: str, source: Path) -> StoredAsset:
    """Copy a file into the content-addressed store (once); returns where it lies."""
    root = asset_root()
    root.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(dir=root, delete=False) as copy, source.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
            copy.write(chunk)
    sha256 = digest.hexdigest()
    target = root / sha256[:2] / sha256
    target.parent.mkdir(exist_ok=True)
    if target.exists():
        os.unlink(copy.name)
    else:
        os.chmod(copy.name, 0o444)
        shutil.move(copy.name, target)
    return StoredAsset(relpath=relpath, sha256=sha256, size_bytes=size, stored_path=str(target))
