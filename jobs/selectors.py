"""User-scoped reads on jobs: the filtered, sorted list (a constant number of queries whatever its size), the
counts by state, the recent events, and which remote commands concern a job.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, F, OrderBy, Q, QuerySet, TextField
from django.db.models.functions import Cast

from accounts.models import User
from clusters.models import RemoteCommandRecord
from jobs.access import visible_jobs
from jobs.models import Job, JobEvent, JobProgress, JobState
from jobs.namd_log import LogProgress
from templates_app.batch_script import JOB_NAME_PREFIX, JOB_UUID_TAG_CHARS

# A job's large text columns, which lists and timelines never show.
JOB_BULKY_COLUMNS = ("config_text", "batch_script", "values", "resources")
LIST_COLUMNS_DEFERRED = (*JOB_BULKY_COLUMNS, "template_version__body", "template_version__variables")
# The list's sort keys (what a query string may ask for) and the column each sorts by.
SORT_COLUMNS = {
    "created": "created_at",
    "title": "title",
    "state": "state",
    "cluster": "profile__name",
    "submitted": "submitted_at",
}
DEFAULT_SORT = "-created"
RECENT_EVENTS = 10


def sort_keys() -> list[str]:
    """Every accepted `sort` value: each key ascending, and descending with a leading '-'."""
    return [prefix + key for key in SORT_COLUMNS for prefix in ("", "-")]


# Columns that may be NULL sort their NULLs last both ways; the others sort plainly, so that PostgreSQL can walk
# an index (job_owner_recent for the default) instead of sorting every row of the member.
NULLABLE_SORT_COLUMNS = frozenset({"submitted_at"})


def _ordering(sort: str) -> tuple[OrderBy, OrderBy]:
    key = sort if sort in sort_keys() else DEFAULT_SORT
    descending = key.startswith("-")
    column = SORT_COLUMNS[key.removeprefix("-")]
    nulls_last = True if column in NULLABLE_SORT_COLUMNS else None
    if descending:
        return F(column).desc(nulls_last=nulls_last), F("id").desc()
    return F(column).asc(nulls_last=nulls_last), F("id").asc()


def job_list(
    user: User,
    *,
    state: str | None = None,
    cluster_id: int | None = None,
    template: str | None = None,
    text: str | None = None,
    sort: str = DEFAULT_SORT,
) -> QuerySet[Job]:
    """The jobs `user` may see, filtered and sorted (an unknown sort is the newest first).

    Owner, cluster and template come in the same query; `state` takes a comma-separated list.
    """
    jobs = (
        visible_jobs(user)
        .select_related("owner", "profile", "template_version__template")
        .defer(*LIST_COLUMNS_DEFERRED)
    )
    if state:
        jobs = jobs.filter(state__in=[value for value in state.upper().split(",") if value in JobState.values])
    if cluster_id is not None:
        jobs = jobs.filter(profile_id=cluster_id)
    if template:
        jobs = jobs.filter(template_version__template__slug=template)
    if text:
        jobs = jobs.filter(title__icontains=text.strip()[:200])
    return jobs.order_by(*_ordering(sort))


@dataclass(frozen=True)
class StateGroup:
    """States a person looks at together; `query` is the list's `state` filter for all of them."""

    key: str
    label: str
    description: str
    states: tuple[JobState, ...]

    @property
    def query(self) -> str:
        return ",".join(self.states)


STATE_GROUPS = (
    StateGroup(
        "active",
        "Active",
        "Being submitted, queued or running on a cluster.",
        (JobState.SUBMITTING, JobState.PENDING, JobState.RUNNING, JobState.COMPLETING),
    ),
    StateGroup(
        "attention",
        "Needs attention",
        "Waiting for inputs or a submission, or ended without completing.",
        (
            JobState.DRAFT,
            JobState.UPLOADING,
            JobState.READY,
            JobState.FAILED,
            JobState.TIMEOUT,
            JobState.OUT_OF_MEMORY,
            JobState.NODE_FAIL,
            JobState.PREEMPTED,
            JobState.LOST,
        ),
    ),
    StateGroup(
        "finished",
        "Finished",
        "Completed or cancelled.",
        (JobState.COMPLETED, JobState.CANCELLED),
    ),
)


@dataclass(frozen=True)
class StateGroupCount:
    group: StateGroup
    total: int
    by_state: tuple[tuple[JobState, int], ...]  # the group's states that have jobs, in the group's order


def job_state_counts(user: User) -> list[StateGroupCount]:
    """How many of the jobs `user` may see are in each state, by group (one query)."""
    counts = dict(visible_jobs(user).order_by().values_list("state").annotate(jobs=Count("id")))
    result = []
    for group in STATE_GROUPS:
        by_state = tuple((state, counts[state]) for state in group.states if counts.get(state))
        result.append(StateGroupCount(group, sum(count for _, count in by_state), by_state))
    return result


def recent_job_events(user: User, *, limit: int = RECENT_EVENTS) -> QuerySet[JobEvent]:
    """The newest events of the jobs `user` may see (a lab admin: every job), each with its job and actor."""
    return (
        JobEvent.objects.filter(job__in=visible_jobs(user))
        .select_related("job__owner", "actor")
        .defer(*(f"job__{column}" for column in JOB_BULKY_COLUMNS))
        .order_by("-created_at", "-id")[:limit]
    )


def recent_jobs(user: User, *, limit: int = 100) -> QuerySet[Job]:
    """The newest jobs `user` may see, id and title only (for a filter's choices)."""
    return visible_jobs(user).only("id", "title", "created_at").order_by("-created_at", "-id")[:limit]


def commands_of_job(commands: QuerySet[RemoteCommandRecord], job: Job) -> QuerySet[RemoteCommandRecord]:
    """The records among `commands` that concern `job`: those recorded with the job, or matched by argv.

    Records made before the job column have no job, nor do a group's batched commands (the status sync, a bulk
    scancel: `member_session(for_group=True)`), so they are also matched by what the portal put in their argv,
    among the job owner's records on the job's cluster:
    - the job's dir name (`<template slug>-<uuid8>`, the last part of both its project and scratch dir): mkdir,
      the config/script tar, cp, sbatch (its script path), log reads, rsync, listings, uploads, downloads, rm;
    - its SLURM job-name tag `np-<uuid12>` (the look-up of a submission after a retry);
    - `scancel` of its SLURM id.
    Not matched: the status sync's batched squeue/sacct of several jobs at once, and discovery's `find`.
    """
    tag = JOB_NAME_PREFIX + job.uuid.hex[:JOB_UUID_TAG_CHARS]
    concerns_job = Q(argv_text__contains=tag)
    if job.uuid.hex[:8] in job.dir_name:  # a dir the portal named; never match on a bare folder name
        concerns_job |= Q(argv_text__contains=job.dir_name)
    if job.slurm_job_id:
        concerns_job |= Q(argv__contains=["scancel", job.slurm_job_id])
    matched_by_argv = Q(user_id=job.owner_id, profile_id=job.profile_id) & concerns_job
    return commands.annotate(argv_text=Cast("argv", TextField())).filter(Q(job_id=job.pk) | matched_by_argv)


def job_progress(job: Job) -> tuple[JobProgress | None, LogProgress]:
    """The job's stored progress row (None before its first log read) and the NAMD log progress it holds."""
    progress = JobProgress.objects.filter(job=job).first()
    log = LogProgress.from_state(progress.log_state) if progress and progress.log_state else LogProgress()
    return progress, log
