"""Reading a pipeline run from its steps: the current job of each step, the run's state, what it reads.

A step's current job is the newest at its position (a resume or a TIMEOUT continuation adds a newer
one; the older stays as history). The run's state is derived from its current steps, never stored:
DRAFT/READY before submission, RUNNING while a step is queued or running, COMPLETED when every step
completed, FAILED (with the first step that did not complete) or CANCELLED. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from jobs.models import EDITABLE_STATES, Job, JobProgress, JobState, Pipeline
from jobs.namd_log import LogProgress
from templates_app.protocols import output_variable
from templates_app.specs import specs_from_json

ACTIVE_STATES = frozenset({JobState.SUBMITTING, JobState.PENDING, JobState.RUNNING, JobState.COMPLETING})


@dataclass(frozen=True)
class PipelineStatus:
    state: str  # DRAFT, READY, RUNNING, COMPLETED, FAILED, CANCELLED
    current: Job | None  # the step running or next to run; the failed one for FAILED
    done: int  # steps completed
    total: int

    @property
    def failed_position(self) -> int | None:
        return self.current.position if self.state == "FAILED" and self.current is not None else None


def current_steps(pipeline: Pipeline, jobs: list[Job] | None = None) -> list[Job]:
    """The current job of every step, in step order (`jobs`: the pipeline's jobs, if already loaded)."""
    newest: dict[int, Job] = {}
    for job in jobs if jobs is not None else pipeline.steps.select_related("template_version"):
        if job.position is not None and (job.position not in newest or job.pk > newest[job.position].pk):
            newest[job.position] = job
    return [newest[position] for position in sorted(newest)]


def pipeline_status(steps: list[Job], *, cancel_requested: bool = False) -> PipelineStatus:
    """The run's state from its current steps."""
    done = sum(1 for step in steps if step.state == JobState.COMPLETED)
    total = len(steps)
    stopped = next((s for s in steps if s.is_terminal and s.state != JobState.COMPLETED), None)
    active = next((s for s in steps if s.state in ACTIVE_STATES), None)
    if active is not None:
        return PipelineStatus("RUNNING", active, done, total)
    if stopped is not None:
        cancelled = cancel_requested or stopped.state == JobState.CANCELLED
        return PipelineStatus("CANCELLED" if cancelled else "FAILED", stopped, done, total)
    if total and done == total:
        return PipelineStatus("COMPLETED", None, done, total)
    waiting = next((s for s in steps if s.state in EDITABLE_STATES), None)
    if waiting is not None and done:  # a resume not yet submitted
        return PipelineStatus("READY" if waiting.state == JobState.READY else "DRAFT", waiting, done, total)
    first = steps[0] if steps else None
    state = "READY" if first is not None and first.state == JobState.READY else "DRAFT"
    return PipelineStatus(state, first, done, total)


def step_output_name(job: Job) -> str | None:
    """The output name the step writes (`<name>.coor`...), from its template's output variable."""
    variable = output_variable(specs_from_json(job.template_version.variables))
    value = job.values.get(variable) if variable else None
    return str(value) if value else None


def produced_prefixes(steps: list[Job]) -> list[str]:
    """For each step, the path prefix of the files it writes in the shared folder (`namd/step4_equilibration.`)."""
    prefixes = []
    for step in steps:
        name = step_output_name(step)
        folder = PurePosixPath(step.config_path).parent
        prefixes.append(f"{PurePosixPath(folder, name)}." if name else "")
    return prefixes


def upload_step(steps: list[Job]) -> Job | None:
    """The step the member uploads the run's inputs to: the first not yet submitted."""
    return next((step for step in steps if step.state in EDITABLE_STATES), None)


def runs_in_order(pipeline: Pipeline) -> list[Job]:
    """The jobs that make the run's story, in order: each current step preceded by the timed-out jobs it
    continues (a resumed step's failed predecessors are history, not part of it)."""
    jobs = list(pipeline.steps.all())
    by_pk = {job.pk: job for job in jobs}
    ordered = []
    for step in current_steps(pipeline, jobs):
        chain = [step]
        while (parent := by_pk.get(chain[-1].parent_id or 0)) is not None and parent.position == step.position:
            chain.append(parent)
        ordered.extend(reversed(chain))
    return ordered


def pipeline_energies(pipeline: Pipeline, columns: list[str]) -> dict[str, Any]:
    """One energy plot across the run: each column's (step, value) on one continuous step axis, and where each
    job starts on it. A stage whose steps start again from 0 (CHARMM-GUI's) is moved to after the one before;
    one continuing the step count (firsttimestep) stays where it is. One query for the logs."""
    runs = runs_in_order(pipeline)
    states = dict(JobProgress.objects.filter(job__in=runs).values_list("job_id", "log_state"))
    titles: list[str] = []
    series: dict[str, list[tuple[int, float]]] = {column: [] for column in columns}
    starts = []
    offset, last = 0, None
    for job in runs:
        log = LogProgress.from_state(states[job.pk]) if states.get(job.pk) else LogProgress()
        titles.extend(title for title in log.energy_titles if title not in titles)
        first = log.energies[0][0] if log.energies and log.energies[0] else None
        if first is not None and last is not None and int(first) + offset < last:
            offset = last - int(first)
        starts.append(
            {
                "job_id": job.pk,
                "position": job.position,
                "label": job.stage_name,
                "step": (int(first) + offset) if first is not None else last,
            }
        )
        for column in columns:
            points = [(step + offset, value) for step, value in log.energy_series(column)]
            series[column].extend(points)
            if points:
                last = max(last or points[-1][0], points[-1][0])
    return {"titles": titles, "series": {c: s for c, s in series.items() if c in titles}, "starts": starts}
