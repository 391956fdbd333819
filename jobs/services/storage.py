"""A member's share of the portal's file store: the quota on what they stage there, and its expiry.

What counts against a member (the owner of the jobs the files belong to): staged downloads being fetched
(their size, reserved once stat'ed) or ready (each copy once, however many requests share it), uploaded
inputs waiting to be copied to the cluster, and unfinished resumable uploads (their declared size, reserved
by their first chunk). Template assets are shared by all and count for no one. A reservation is made with
the owner's row locked, so two of their requests cannot both take the last of the quota.

Expiry (a beat task): staged downloads older than PORTAL_STAGED_DOWNLOAD_TTL_HOURS (rows and files; a copy
still shared by a younger download stays) and resumable uploads untouched for PORTAL_UPLOAD_PART_TTL_HOURS.
Never touches a cluster.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from jobs import file_store
from jobs.models import EDITABLE_STATES, InputFile, Job, StagedDownload
from portal.errors import Conflict

logger = logging.getLogger(__name__)

STAGING_DOWNLOAD_STATES = (StagedDownload.State.FETCHING, StagedDownload.State.READY)


class StorageQuotaExceeded(Conflict):
    """The member's staged files would pass their quota on the portal's file store: a 413, nothing written."""

    http_status = 413


def used_bytes(owner_id: int, *, except_download_id: int | None = None, except_partial: Path | None = None) -> int:
    """What the member's staged downloads, waiting uploads and unfinished resumable uploads hold (or reserve)."""
    downloads = StagedDownload.objects.filter(job__owner_id=owner_id, state__in=STAGING_DOWNLOAD_STATES)
    if except_download_id is not None:
        downloads = downloads.exclude(pk=except_download_id)
    copies: dict[str, int] = {}
    fetching = 0
    for state, local_path, size in downloads.values_list("state", "local_path", "size_bytes"):
        if state == StagedDownload.State.READY:
            copies[local_path] = size
        else:
            fetching += size
    waiting = (
        InputFile.objects.filter(job__owner_id=owner_id, is_template_asset=False)
        .exclude(staged_path="")
        .values_list("size_bytes", flat=True)
    )
    editable = Job.objects.filter(owner_id=owner_id, state__in=EDITABLE_STATES, deleted_at=None)
    partials = [
        file_store.declared_size(partial)
        for job_uuid in editable.values_list("uuid", flat=True)
        for partial in file_store.partial_uploads(job_uuid)
        if partial != except_partial
    ]
    return sum(copies.values()) + fetching + sum(waiting) + sum(partials)


def check_room(
    owner_id: int, adding_bytes: int, *, except_download_id: int | None = None, except_partial: Path | None = None
) -> None:
    """Refuse `adding_bytes` more when the member's quota cannot hold them (what is excluded is being replaced).

    Raises StorageQuotaExceeded (STORAGE_QUOTA_EXCEEDED)."""
    quota = settings.STORAGE_QUOTA_BYTES
    used = used_bytes(owner_id, except_download_id=except_download_id, except_partial=except_partial)
    if used + adding_bytes > quota:
        raise StorageQuotaExceeded(
            f"Your files on the portal would take {used + adding_bytes} bytes, more than your quota of {quota}; "
            "download or submit what is staged, or wait for old downloads to expire, then try again.",
            code="STORAGE_QUOTA_EXCEEDED",
            details={"used_bytes": used, "adding_bytes": adding_bytes, "quota_bytes": quota},
        )


def lock_owner(owner_id: int) -> None:
    """Serialize the member's reservations until the transaction ends (call inside `transaction.atomic`)."""
    User.objects.select_for_update().filter(pk=owner_id).values_list("pk", flat=True).first()


def expire_staged_files() -> dict[str, int]:
    """Beat: remove staged downloads past their time (rows and files) and resumable uploads left unfinished."""
    now = timezone.now()
    expired = StagedDownload.objects.filter(created_at__lt=now - timedelta(hours=settings.STAGED_DOWNLOAD_TTL_HOURS))
    with transaction.atomic():
        paths = set(expired.exclude(local_path="").values_list("local_path", flat=True))
        downloads, _ = expired.delete()
        shared = set(StagedDownload.objects.filter(local_path__in=paths).values_list("local_path", flat=True))
    for local_path in paths - shared:
        file_store.remove_download(local_path)
    oldest_s = time.time() - settings.UPLOAD_PART_TTL_HOURS * 3600
    partials = 0
    for partial in file_store.all_partial_uploads():
        try:
            if partial.stat().st_mtime < oldest_s:
                partial.unlink()
                partials += 1
        except FileNotFoundError:  # completed or removed meanwhile
            continue
    counts = {"downloads": downloads, "download_files": len(paths - shared), "partial_uploads": partials}
    logger.info("file_store_expired", extra=counts)
    return counts
