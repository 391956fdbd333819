"""The notification outbox draining job-end events into mails, for bench/usage.py.

`count` finished jobs' ends are told the way `finish_job` tells them (`notifications.job_events.job_finished`,
each in its own transaction), every event told a second time and every delivery ordered a second time (a repeated
finish, a redelivered task: neither may send twice), then a real Celery worker sends the mails to the local SMTP
server (scripts/services `smtp`). Measured: seconds from the first event until every delivery is sent, and the
mails in the SMTP server's store beyond one per notification (`duplicates`, which must be 0).
"""

from __future__ import annotations

import email
import itertools
import os
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from bench.local_bench import wait_until
from clusters.models import ClusterProfile
from jobs.models import Job, JobState
from notifications import job_events
from notifications.models import Delivery, Event, Notification, NotificationPreference
from notifications.services import order_send
from templates_app.models import TemplateVersion

SLURM_IDS = itertools.count(800_000)  # unique per cluster across the rounds
MAIL_DIR = Path(os.environ.get("PORTAL_VAR", "/var/lib/namd-portal")) / "mail"


def finished_job(
    owner: User, profile: ClusterProfile, version: TemplateVersion, *, name: str, slurm_job_id: str, ended: datetime
) -> Job:
    """A COMPLETED job whose results are back (unsaved: for a bulk_create), named `name` (its title and folders)."""
    return Job(
        owner=owner,
        profile=profile,
        template_version=version,
        uuid=uuid.uuid4(),
        title=name,
        recipe_name="cpu",
        project_dir=f"/home/bench/{name.replace(' ', '-')}",
        scratch_dir=f"/scratch/bench/{name.replace(' ', '-')}",
        state=JobState.COMPLETED,
        slurm_job_id=slurm_job_id,
        started_at=ended - timedelta(hours=1),
        ended_at=ended,
        finished_at=ended,
        resources={"partition": "debug", "nodes": 1},
    )


def finished_jobs(
    members: list[User], profile: ClusterProfile, version: TemplateVersion, count: int, tag: str
) -> list[Job]:
    now = timezone.now()
    return Job.objects.bulk_create(
        finished_job(
            members[n % len(members)],
            profile,
            version,
            name=f"bench notify {tag} {n}",
            slurm_job_id=str(next(SLURM_IDS)),
            ended=now,
        )
        for n in range(count)
    )


def addressed(members: list[User], tag: str) -> set[str]:
    """Each member's address for this round (so that the store's mails of a round are told apart), mail wanted."""
    addresses = set()
    for member in members:
        member.email = f"{member.username}.{tag}@bench.invalid"
        member.save(update_fields=["email"])
        addresses.add(member.email)
        NotificationPreference.objects.update_or_create(
            user=member, defaults={"email_enabled": True, "webhook_url": "", "events": [Event.JOB_COMPLETED]}
        )
    return addresses


def stored_mails(addresses: set[str], *, remove: bool = False) -> Counter[str]:
    """The stored mails to these addresses, by Message-ID (then removed from the store, with `remove`)."""
    found: Counter[str] = Counter()
    for path in MAIL_DIR.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes())
        if message["X-Envelope-To"] in addresses:
            found[str(message["Message-ID"])] += 1
            if remove:
                path.unlink()
    return found


def drain(members: list[User], profile: ClusterProfile, version: TemplateVersion, count: int) -> dict[str, float]:
    """Tell `count` job ends twice, order each delivery twice, wait until every delivery is sent."""
    tag = uuid.uuid4().hex[:8]
    addresses = addressed(members, tag)
    jobs = finished_jobs(members, profile, version, count, tag)
    started = time.perf_counter()
    for job in jobs:
        with transaction.atomic():
            job_events.job_finished(job, continues=False)
    for job in jobs:  # a finish run again: the notification's key makes it the same one
        with transaction.atomic():
            job_events.job_finished(job, continues=False)
    told = Notification.objects.filter(recipient__in=members, fields__title__icontains=tag)
    deliveries = Delivery.objects.filter(notification__in=told)
    with transaction.atomic():  # a redelivered send: the delivery's state and lease keep it to one mail
        for delivery_id in deliveries.values_list("pk", flat=True):
            order_send(delivery_id)

    def all_sent() -> bool:
        return deliveries.filter(state=Delivery.State.SENT).count() == count

    wait_until(all_sent, timeout_s=600, what=f"{count} mails sent", every_s=0.2)
    seconds = time.perf_counter() - started
    wait_until(
        lambda: sum(stored_mails(addresses).values()) >= count, timeout_s=60, what="the mails stored", every_s=0.5
    )
    time.sleep(2)  # a late second send, if any, would land now
    mails = stored_mails(addresses, remove=True)
    notifications = told.count()
    return {
        "seconds": seconds,
        "notifications": notifications,
        "deliveries": deliveries.count(),
        "mails": sum(mails.values()),
        "duplicates": sum(mails.values()) - len(mails) + (notifications - count),
    }
