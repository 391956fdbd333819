"""Resumable uploads of a job's inputs: chunks appended in order to a partial file, then registered whole.

A client asks how many bytes of (name, total size) the portal already has, then sends the rest in
chunks, each with `Content-Range: bytes START-END/TOTAL`. A chunk is appended only where the data
stops (START == received), so a retry after a network error or a page reload continues from there.
Chunks are read from the request stream in small blocks and never held in memory whole. The complete
file is registered exactly like a one-shot upload (`services.register_staged_input`).

Partial data lives at `file_store.partial_path` (`<FILE_STORE>/uploads/<job uuid>/resumable/<name>.<total>.part`);
a first chunk is taken only when the declared total fits the cluster's per-file limit and the member's
storage quota (`jobs.services.storage`), and a partial left unfinished expires. This module
knows the header's text and a readable stream, never HTTP requests or responses.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from django.db import transaction

from accounts.models import User
from jobs import file_store
from jobs.access import access_job_to_act
from jobs.models import EDITABLE_STATES, InputFile, Job
from jobs.services import storage
from jobs.services.inputs import register_staged_input
from portal.errors import Conflict, InvalidInput

READ_BLOCK_BYTES = 64 * 1024
MAX_CHUNK_BYTES = 16 * 1024 * 1024
CLIENT_CHUNK_BYTES = 8 * 1024 * 1024  # what the portal's own page sends: half the cap, a few seconds each
# A one-shot multipart body holds the file plus its boundaries and part headers.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
CONTENT_RANGE_RE = re.compile(r"bytes ([0-9]{1,15})-([0-9]{1,15})/([0-9]{1,15})", re.ASCII)


class UploadRequestInvalid(InvalidInput):
    """A chunk the upload protocol cannot take (a malformed header, a body of the wrong length): a 400."""

    http_status = 400


class UploadTooLarge(InvalidInput):
    """A file above the cluster's limit, or a chunk above MAX_CHUNK_BYTES: a 413, refused before any byte."""

    http_status = 413


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class UploadStatus:
    name: str
    size: int
    received: int
    max_bytes: int


@dataclass(frozen=True)
class ChunkRange:
    start: int
    end: int  # inclusive, as in the header
    total: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_content_range(header: str) -> ChunkRange:
    """The range of `Content-Range: bytes START-END/TOTAL`. Raises UploadRequestInvalid (CONTENT_RANGE_INVALID)."""
    match = CONTENT_RANGE_RE.fullmatch(header.strip())
    if match is not None:
        start, end, total = (int(group) for group in match.groups())
        if start <= end < total:
            return ChunkRange(start=start, end=end, total=total)
    raise UploadRequestInvalid(
        "Send each chunk with a header 'Content-Range: bytes START-END/TOTAL' (END inclusive, below TOTAL).",
        code="CONTENT_RANGE_INVALID",
        details={"content_range": header[:100]},
    )


def _editable_job(user: User, job_id: int) -> Job:
    job = access_job_to_act(user=user, job_id=job_id)
    if job.state not in EDITABLE_STATES:
        raise Conflict("Inputs can change only before the job is submitted.", code="JOB_NOT_EDITABLE")
    return job


def _check_size(job: Job, size_bytes: int) -> None:
    limit = job.profile.max_upload_bytes
    if size_bytes > limit:
        raise UploadTooLarge(
            f"The file is larger than this cluster's limit of {limit} bytes.",
            code="FILE_TOO_LARGE",
            details={"max_bytes": limit},
        )
    if size_bytes < 1:
        raise InvalidInput("The file is empty: there is nothing to upload.", code="FILE_EMPTY")


def _received(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def check_upload_body(*, user: User, job_id: int, content_length: int | None) -> None:
    """Before a one-shot upload's body is read: its declared length fits the cluster's per-file limit and the
    member's storage quota.

    Raises NotFound, Conflict (JOB_NOT_EDITABLE), UploadRequestInvalid (CONTENT_LENGTH_REQUIRED), UploadTooLarge
    (FILE_TOO_LARGE), StorageQuotaExceeded (STORAGE_QUOTA_EXCEEDED).
    """
    job = _editable_job(user, job_id)
    if content_length is None:
        raise UploadRequestInvalid(
            "Send the upload with a Content-Length header (or use the resumable upload).",
            code="CONTENT_LENGTH_REQUIRED",
        )
    _check_size(job, max(1, content_length - MULTIPART_OVERHEAD_BYTES))
    storage.check_room(job.owner_id, content_length)


def upload_status(*, user: User, job_id: int, name: str, size_bytes: int) -> UploadStatus:
    """How much of (name, size) the portal has; a new upload must fit the member's storage quota.

    Raises NotFound, Conflict (JOB_NOT_EDITABLE), InvalidInput (FILENAME_*, FILE_*), StorageQuotaExceeded.
    """
    job = _editable_job(user, job_id)
    clean = file_store.clean_input_path(name)
    _check_size(job, size_bytes)
    partial = file_store.partial_path(job.uuid, clean, size_bytes)
    received = _received(partial)
    if received == 0:
        storage.check_room(job.owner_id, size_bytes, except_partial=partial)
    return UploadStatus(name=clean, size=size_bytes, received=received, max_bytes=job.profile.max_upload_bytes)


def _lock(stream: BinaryIO) -> None:
    """Only one request appends to a partial file at a time (a second one is told to retry)."""
    try:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        raise Conflict(
            "Another request is uploading this file right now; try again in a moment.", code="UPLOAD_IN_PROGRESS"
        ) from exc


def _offset_mismatch(received: int) -> Conflict:
    return Conflict(
        f"The portal has {received} bytes of this file; continue from there.",
        code="UPLOAD_OFFSET_MISMATCH",
        details={"received": received},
    )


def _open_partial(job: Job, path: Path, start: int, total: int) -> BinaryIO:
    """The partial file to append to: created by a first chunk only, so a stray later chunk leaves nothing.

    Creating it reserves the declared total in the member's quota. Raises StorageQuotaExceeded, Conflict."""
    if start == 0:
        with transaction.atomic():
            storage.lock_owner(job.owner_id)
            if not path.exists():
                storage.check_room(job.owner_id, total, except_partial=path)
            path.parent.mkdir(parents=True, exist_ok=True)
            return path.open("ab")
    try:
        return path.open("r+b")
    except FileNotFoundError:
        raise _offset_mismatch(0) from None


def _append(body: Readable, stream: BinaryIO, length: int) -> int:
    """Copy up to `length` bytes from the body in small blocks; returns how many arrived."""
    written = 0
    while written < length:
        try:
            block = body.read(min(READ_BLOCK_BYTES, length - written))
        except OSError as exc:  # the client went away mid-chunk: what arrived is kept for the resume
            raise UploadRequestInvalid(
                "The chunk was cut off; ask how much arrived and send the rest.", code="CHUNK_INCOMPLETE"
            ) from exc
        if not block:
            break
        stream.write(block)
        written += len(block)
    return written


def _remove_older_partials(name: str, keep: Path) -> None:
    """A new upload of a name replaces partial uploads of the same name with another size."""
    same_name = re.compile(re.escape(file_store.flat_name(name)) + r"\.[0-9]+\.part")
    for path in keep.parent.iterdir():
        if path != keep and same_name.fullmatch(path.name):
            path.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def receive_chunk(
    *, user: User, job_id: int, name: str, content_range: str, content_length: int | None, body: Readable
) -> UploadStatus | InputFile:
    """Append one chunk; the last one registers the input and enqueues its copy (returns the InputFile).

    Raises NotFound, Conflict (JOB_NOT_EDITABLE, UPLOAD_OFFSET_MISMATCH with details.received, UPLOAD_IN_PROGRESS),
    UploadRequestInvalid (CONTENT_RANGE_INVALID, CHUNK_LENGTH_MISMATCH, CHUNK_INCOMPLETE), UploadTooLarge
    (FILE_TOO_LARGE, CHUNK_TOO_LARGE), InvalidInput (FILENAME_INVALID, FILENAME_RESERVED), StorageQuotaExceeded
    (STORAGE_QUOTA_EXCEEDED, before the first chunk is written).
    """
    job = _editable_job(user, job_id)
    clean = file_store.clean_input_path(name)
    chunk = parse_content_range(content_range)
    _check_size(job, chunk.total)
    if chunk.length > MAX_CHUNK_BYTES:
        raise UploadTooLarge(
            f"Send chunks of at most {MAX_CHUNK_BYTES} bytes.",
            code="CHUNK_TOO_LARGE",
            details={"max_chunk_bytes": MAX_CHUNK_BYTES},
        )
    if content_length != chunk.length:
        raise UploadRequestInvalid(
            f"The body must be exactly the {chunk.length} bytes of its Content-Range.", code="CHUNK_LENGTH_MISMATCH"
        )
    path = file_store.partial_path(job.uuid, clean, chunk.total)
    with _open_partial(job, path, chunk.start, chunk.total) as stream:
        _lock(stream)
        received = stream.seek(0, os.SEEK_END)
        if chunk.start != received:
            raise _offset_mismatch(received)
        if chunk.start == 0:
            _remove_older_partials(clean, keep=path)
        written = _append(body, stream, chunk.length)
        received += written
        if written < chunk.length:
            raise UploadRequestInvalid(
                "The chunk ended early; ask how much arrived and send the rest.",
                code="CHUNK_INCOMPLETE",
                details={"received": received},
            )
        if received < chunk.total:
            return UploadStatus(name=clean, size=chunk.total, received=received, max_bytes=job.profile.max_upload_bytes)
        # Moved while still locked: a late duplicate of the last chunk finds no partial file to append to.
        staged = file_store.upload_path(job.uuid, file_store.staged_name(clean))
        path.replace(staged)
    return register_staged_input(
        user=user, job=job, name=clean, staged=staged, size_bytes=chunk.total, sha256=_sha256(staged)
    )
