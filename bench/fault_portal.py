"""The fault benchmark's portal side, in the bench's private database: its members (users, API tokens, keys
on the local cluster's profile), the built-in templates, and what it reads back: the jobs' states and
the results copies recorded for them.

Import only after `django.setup()` with the settings pointed at the private services
(`bench.private_stack.PrivateStack.use_in_this_process`). Reads tolerate a database that is down (a fault
may be on): they return None and the connection is opened again on the next call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from django.core.management import call_command
from django.db import DatabaseError, close_old_connections, connection

from accounts.models import User
from accounts.services import create_api_token
from clusters.demo import LocalCluster, register_local_cluster
from clusters.models import RemoteCommandRecord
from jobs import remote
from jobs.models import EDITABLE_STATES, TERMINAL_STATES, Job
from templates_app.builtin import load_builtin_templates
from templates_app.models import Template

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    profile_id: int
    template_id: int
    tokens: dict[str, str]  # member -> API token secret


@dataclass(frozen=True)
class JobRow:
    job_id: int
    uuid_hex: str
    owner: str
    state: str
    slurm_job_id: str
    finished_at: datetime | None
    project_dir: str
    scratch_dir: str

    @property
    def is_settled(self) -> bool:
        """The bench's "settled": terminal with its results copied, or never sent (back in READY or before)."""
        if self.state in EDITABLE_STATES:
            return True
        return self.state in TERMINAL_STATES and self.finished_at is not None


def set_up(facts: dict[str, str], members: tuple[str, ...], template_slug: str) -> World:
    """Migrate the empty private database, then members, the local cluster's profile and the templates."""
    call_command("migrate", interactive=False, verbosity=0)
    for name in members:
        User.objects.create_user(username=name, password=None)
    cluster = LocalCluster(
        host=facts["LOCALCLUSTER_HOST"],
        port=int(facts["LOCALCLUSTER_PORT"]),
        host_key_pub=Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]),
        keys_dir=Path(facts["LOCALCLUSTER_KEYS_DIR"]),
    )
    profile = register_local_cluster(cluster, list(members))
    load_builtin_templates()
    tokens = {
        user.username: create_api_token(user=user, name="bench faults", expires_in_days=1).secret
        for user in User.objects.filter(username__in=members)
    }
    return World(profile_id=profile.pk, template_id=Template.objects.get(slug=template_slug).pk, tokens=tokens)


def tolerant(read: Callable[[], T]) -> T | None:
    """The read's result, or None while the database is down (the broken connection is dropped)."""
    try:
        close_old_connections()
        return read()
    except DatabaseError:
        connection.close()
        return None


def job_rows(job_ids: list[int]) -> list[JobRow] | None:
    def read() -> list[JobRow]:
        jobs = Job.objects.filter(pk__in=job_ids).select_related("owner").order_by("pk")
        return [
            JobRow(
                job_id=job.pk,
                uuid_hex=job.uuid.hex,
                owner=job.owner.username,
                state=job.state,
                slurm_job_id=job.slurm_job_id,
                finished_at=job.finished_at,
                project_dir=job.project_dir,
                scratch_dir=job.scratch_dir,
            )
            for job in jobs
        ]

    return tolerant(read)


def results_copies(rows: list[JobRow]) -> dict[int, list[tuple[datetime, datetime]]] | None:
    """Each job's results copies (the finish's `rsync scratch/ project/`) as recorded: (start, end).

    A copy's record is written when its command returns, with the start and duration of the exec it ran in;
    a copy whose worker was killed under it leaves none (its SSH session, and with it the rsync, ends then).
    """

    def read() -> dict[int, list[tuple[datetime, datetime]]]:
        by_argv = {}
        for row in rows:
            stand_in = Job(scratch_dir=row.scratch_dir, project_dir=row.project_dir)
            by_argv[tuple(remote.copy_results_argv(stand_in))] = row.job_id
        copies: dict[int, list[tuple[datetime, datetime]]] = {row.job_id: [] for row in rows}
        records = RemoteCommandRecord.objects.filter(argv__0="rsync").values_list("argv", "started_at", "duration_ms")
        for argv, started_at, duration_ms in records:
            job_id = by_argv.get(tuple(argv))
            if job_id is not None:
                copies[job_id].append((started_at, started_at + timedelta(milliseconds=duration_ms)))
        return copies

    return tolerant(read)
