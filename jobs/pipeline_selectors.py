"""User-scoped reads for the pipeline pages: the runs a user sees with each one's state and progress, and one
run's overview (its step graph, the timeline of every job it made, what can be done with it next).

A list page costs the same queries for 5 runs or 25 and an overview the same for 3 steps or 30: the steps come
in one query (prefetched for a list), their bulky text left out. The states are derived from the current
steps by `jobs.pipeline_steps`, never stored. Reads only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from jobs.access import visible_pipelines
from jobs.models import TERMINAL_STATES, Job, JobState, Pipeline
from jobs.pipeline_steps import PipelineStatus, current_steps, pipeline_status, upload_step
from jobs.selectors import LIST_COLUMNS_DEFERRED
from templates_app.protocol_questions import ProtocolQuestions, protocol_questions

NOT_RUN_CODE = "STAGE_NOT_RUN"
# How the step a run stopped at ended, as "Not run: step K …" says it.
STOPPED_WORDS = {
    JobState.FAILED: "failed",
    JobState.CANCELLED: "was cancelled",
    JobState.TIMEOUT: "timed out",
    JobState.OUT_OF_MEMORY: "ran out of memory",
    JobState.NODE_FAIL: "lost its node",
    JobState.PREEMPTED: "was preempted",
    JobState.LOST: "was lost by SLURM",
}


def _steps_query() -> QuerySet[Job]:
    return Job.objects.select_related("template_version__template").defer(*LIST_COLUMNS_DEFERRED)


@dataclass(frozen=True)
class PipelineRow:
    """A run as the lists show it."""

    pipeline: Pipeline
    status: PipelineStatus
    is_active: bool  # a step is on its way to SLURM or in it: its row asks for itself again


def visible_pipeline_rows(user: User) -> QuerySet[Pipeline]:
    """The runs `user` sees (all runs for a lab admin), newest first, ready for `pipeline_rows`."""
    return (
        visible_pipelines(user)
        .select_related("owner", "protocol", "profile")
        .prefetch_related(Prefetch("steps", queryset=_steps_query()))
    )


def pipeline_rows(pipelines: Iterable[Pipeline]) -> list[PipelineRow]:
    """Each run's state and progress, from its prefetched steps (`visible_pipeline_rows`)."""
    rows = []
    for pipeline in pipelines:
        steps = current_steps(pipeline, list(pipeline.steps.all()))
        status = pipeline_status(steps, cancel_requested=pipeline.cancel_requested_at is not None)
        rows.append(PipelineRow(pipeline, status, any(step.awaits_cluster for step in steps)))
    return rows


@dataclass(frozen=True)
class StepBox:
    """One box of the step graph: the step's current job, and why it did not run when it was cut off."""

    job: Job
    not_run: str  # "Not run: step 2 failed"; empty for a step that ran or may still run
    job_count: int  # the jobs this step took: its continuations and resumes too


@dataclass(frozen=True)
class TimelineEntry:
    """A job of the run in the order it was made, and what it was to its step."""

    job: Job
    kind: str  # "planned" (made with the run), "continuation" (after a TIMEOUT), "resumed" (a resume's new job)
    is_current: bool  # False: a newer job took its step's place
    follows: Job | None  # the job it continues or replaces


@dataclass(frozen=True)
class PipelineOverview:
    pipeline: Pipeline
    status: PipelineStatus
    boxes: list[StepBox]
    timeline: list[TimelineEntry]
    upload_job: Job | None  # the step holding the run's inputs, while the run waits for them or for submit
    is_active: bool  # a step is on its way to SLURM or in it, or its results are still coming back
    can_submit: bool
    can_cancel: bool
    can_resume: bool


def _not_run(job: Job, before: list[Job]) -> str:
    if job.error_code != NOT_RUN_CODE:
        return ""
    stopped = next((s for s in before if s.is_terminal and s.state != JobState.COMPLETED), None)
    if stopped is None:
        return job.error_message or "Not run."
    return f"Not run: step {stopped.position} {STOPPED_WORDS.get(JobState(stopped.state), 'ended')}"


def _timeline(jobs: list[Job], current: list[Job]) -> list[TimelineEntry]:
    current_ids = {job.pk for job in current}
    by_pk = {job.pk: job for job in jobs}
    entries = []
    seen: dict[int | None, Job] = {}  # the newest job so far at each position
    for job in jobs:
        earlier = seen.get(job.position)
        parent = by_pk.get(job.parent_id or 0)
        if parent is not None and parent.position == job.position:
            entries.append(TimelineEntry(job, "continuation", job.pk in current_ids, parent))
        elif earlier is not None:
            entries.append(TimelineEntry(job, "resumed", job.pk in current_ids, earlier))
        else:
            entries.append(TimelineEntry(job, "planned", job.pk in current_ids, None))
        seen[job.position] = job
    return entries


def pipeline_overview(pipeline: Pipeline) -> PipelineOverview:
    """The run's step graph, timeline and next actions, from one query for its jobs."""
    jobs = list(_steps_query().filter(pipeline=pipeline).order_by("pk"))
    steps = current_steps(pipeline, jobs)
    status = pipeline_status(steps, cancel_requested=pipeline.cancel_requested_at is not None)
    counts: dict[int | None, int] = {}
    for job in jobs:
        counts[job.position] = counts.get(job.position, 0) + 1
    boxes = [StepBox(step, _not_run(step, steps[:index]), counts[step.position]) for index, step in enumerate(steps)]
    is_active = any(step.awaits_cluster for step in steps)
    waiting = upload_step(steps)
    return PipelineOverview(
        pipeline=pipeline,
        status=status,
        boxes=boxes,
        timeline=_timeline(jobs, steps),
        upload_job=waiting if status.state in ("DRAFT", "READY") else None,
        is_active=is_active,
        can_submit=status.state in ("DRAFT", "READY") and waiting is not None,
        can_cancel=any(step.state not in TERMINAL_STATES for step in steps),
        can_resume=status.state in ("FAILED", "CANCELLED") and not is_active,
    )


def resume_questions(pipeline: Pipeline) -> ProtocolQuestions:
    """What resuming the run may change: the questions of its protocol with the run's versions and values, for
    the stages from the step it stopped at on. Raises InvalidInput (PROTOCOL_INVALID)."""
    steps = current_steps(pipeline)
    stopped = next((step for step in steps if step.state != JobState.COMPLETED), None)
    return protocol_questions(
        pipeline.protocol,
        versions={step.protocol_stage_id: step.template_version for step in steps if step.protocol_stage_id},
        values=pipeline.values,
        stage_overrides={int(position): values for position, values in pipeline.stage_values.items()},
        from_step=stopped.position if stopped is not None and stopped.position else 1,
    )
