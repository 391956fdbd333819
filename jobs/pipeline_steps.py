"""Reading a pipeline run from its steps: the current job of each step, the run's state, what it reads.

A step's current job is the newest at its position (a resume or a TIMEOUT continuation adds a newer
one; the older stays as history). The run's state is derived from its current steps, never stored:
DRAFT/READY before submission, RUNNING while a step is queued or running, COMPLETED when every step
completed, FAILED (with the first step that did not complete) or CANCELLED. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from jobs.models import EDITABLE_STATES, Job, JobState, Pipeline
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
