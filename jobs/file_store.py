"""The portal-side file store: uploaded inputs waiting to be copied to a cluster, and fetched results.

Paths are `<FILE_STORE>/<uploads|downloads>/<job uuid>/<sanitized name>`; names never come from a
request unchecked. Uploads are written in chunks to a `.part` file and renamed when complete, with
their size limit enforced and sha256 computed while they stream. Unfinished resumable uploads wait in
`uploads/<job uuid>/resumable/<name>.<declared size>.part`. What a member may keep here, and for how
long, is `jobs.services.storage`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings

from jobs.layout import RESERVED_NAMES
from portal.errors import InvalidInput

FILENAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}", re.ASCII)
RESUMABLE_DIR = "resumable"
PARTIAL_SIZE_RE = re.compile(r"\.([0-9]+)\.part")


MAX_INPUT_DEPTH = 16


def clean_input_path(name: str) -> str:
    """A path in the job folder from a client's (`toppar/par_all36m_prot.prm`): each part cleaned as a file name.

    Folders are kept; an absolute path, `..`, an empty part or a path deeper than 16 is refused
    (INPUT_PATH_INVALID), never rewritten into something else. Raises InvalidInput.
    """
    parts = name.replace("\\", "/").strip().removeprefix("./").split("/")
    if name.startswith("/") or len(parts) > MAX_INPUT_DEPTH or any(part in ("", ".", "..") for part in parts):
        raise InvalidInput(
            "Input paths are relative folders and file names inside the job folder (no '/' at the start, no '..').",
            code="INPUT_PATH_INVALID",
            details={"name": name[:200]},
        )
    cleaned = [_clean_part(part, name) for part in parts]
    if len(cleaned) == 1 and cleaned[0].lower() in RESERVED_NAMES:
        raise InvalidInput(
            f"{cleaned[0]} is the portal's own file in the job folder; rename yours.", code="FILENAME_RESERVED"
        )
    return "/".join(cleaned)


def _clean_part(part: str, name: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_.+-]", "_", part.strip(), flags=re.ASCII).lstrip(".-")
    if not FILENAME_RE.fullmatch(clean) or clean.endswith(".part"):
        raise InvalidInput(
            "File names are letters, digits, '_', '.', '+', '-' (at most 200).",
            code="FILENAME_INVALID",
            details={"name": name[:200]},
        )
    return clean


def flat_name(path: str) -> str:
    """An input path as one file name on the portal's disk ('%' is never in a cleaned path)."""
    return path.replace("/", "%2F")


def staged_name(path: str) -> str:
    """A unique flat name for a staged copy of an input at `path`."""
    return f"{uuid.uuid4().hex[:8]}-{flat_name(path)}"


def _job_dir(kind: str, job_uuid: uuid.UUID) -> Path:
    return Path(settings.FILE_STORE) / kind / job_uuid.hex


def upload_path(job_uuid: uuid.UUID, name: str) -> Path:
    return _job_dir("uploads", job_uuid) / name


def download_path(job_uuid: uuid.UUID, download_id: int, name: str) -> Path:
    return _job_dir("downloads", job_uuid) / str(download_id) / name


def partial_path(job_uuid: uuid.UUID, name: str, size_bytes: int) -> Path:
    """Where the unfinished resumable upload of (name, declared size) collects its chunks."""
    return upload_path(job_uuid, RESUMABLE_DIR) / f"{flat_name(name)}.{size_bytes}.part"


def partial_uploads(job_uuid: uuid.UUID) -> list[Path]:
    """The job's unfinished resumable uploads."""
    folder = upload_path(job_uuid, RESUMABLE_DIR)
    return sorted(folder.glob("*.part")) if folder.is_dir() else []


def all_partial_uploads() -> list[Path]:
    """Every job's unfinished resumable uploads."""
    return sorted((Path(settings.FILE_STORE) / "uploads").glob(f"*/{RESUMABLE_DIR}/*.part"))


def declared_size(partial: Path) -> int:
    """The whole size an unfinished resumable upload declared (it is in its name)."""
    match = PARTIAL_SIZE_RE.search(partial.name)
    return int(match.group(1)) if match else 0


def remove_download(local_path: str) -> None:
    """A staged download's file and its own folder (`downloads/<job uuid>/<download id>/`)."""
    path = Path(local_path)
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty or already gone: leave it
        path.parent.rmdir()


def store_chunks(chunks: Iterable[bytes], target: Path, *, max_bytes: int) -> tuple[int, str]:
    """Write chunks to `target` (via `.part`); returns (size, sha256). Raises InvalidInput (FILE_TOO_LARGE)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest, size = hashlib.sha256(), 0
    try:
        with partial.open("wb") as stream:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidInput(
                        f"The file is larger than this cluster's limit of {max_bytes} bytes.", code="FILE_TOO_LARGE"
                    )
                digest.update(chunk)
                stream.write(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return size, digest.hexdigest()


def remove_job_files(job_uuid: uuid.UUID) -> None:
    """Everything the portal keeps of a job: uploads, downloads and its 3D view (`jobs.viewer.frame_store`)."""
    for kind in ("uploads", "downloads", "viewer"):
        shutil.rmtree(_job_dir(kind, job_uuid), ignore_errors=True)
