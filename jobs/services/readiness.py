"""Whether a job may be submitted: what its inputs still lack, and the move UPLOADING <-> READY.

A job whose member asked to submit when ready starts its submission here, the moment it becomes
READY (a sweep's point: its sweep's turn is ordered instead). Touches no cluster.
"""

from __future__ import annotations

from typing import Any

from accounting.budgets import BudgetExceeded
from jobs.models import EDITABLE_STATES, InputFile, Job, JobState, Pipeline, SweepPoint
from jobs.namd_files import STRUCTURE_ROLES
from jobs.pipeline_steps import current_steps
from jobs.services.budget_gate import check_submission_budget
from jobs.services.inputs import job_reads
from jobs.transitions import record_task_failure, transition
from portal.enqueue import enqueue_on_commit
from portal.errors import Conflict
from portal.queues import cluster_queue
from templates_app.namd_config import check_config


def input_problems(job: Job) -> list[dict[str, str]]:
    """What stands between the job's inputs and submission (empty: ready)."""
    inputs = {input_file.name: input_file for input_file in job.inputs.all()}
    problems = []
    for read in job_reads(job):
        if read.path not in inputs:
            reason = f"the config reads it ('{read.keyword}', line {read.line})"
            problems.append({"code": "INPUT_MISSING", "file": read.path, "message": f"Upload {read.path}: {reason}."})
    for input_file in inputs.values():
        if input_file.state == InputFile.State.INVALID:
            problems.append(
                {"code": input_file.problem_code, "message": input_file.problem_message, "file": input_file.name}
            )
        elif input_file.state == InputFile.State.FAILED:
            problems.append(
                {
                    "code": input_file.problem_code or "COPY_FAILED",
                    "message": input_file.problem_message or "Copying to the cluster failed; upload again.",
                    "file": input_file.name,
                }
            )
        elif input_file.state != InputFile.State.UPLOADED:
            problems.append(
                {
                    "code": "INPUT_NOT_ON_CLUSTER",
                    "message": f"{input_file.name} is still being copied.",
                    "file": input_file.name,
                }
            )
    counts = {f.role: f for f in inputs.values() if f.atom_count is not None}
    structure = next((counts[role] for role in STRUCTURE_ROLES if role in counts), None)
    for input_file in counts.values():
        if structure is not None and input_file is not structure and input_file.atom_count != structure.atom_count:
            problems.append(
                {
                    "code": "ATOM_COUNT_MISMATCH",
                    "file": input_file.name,
                    "message": f"{input_file.name} has {input_file.atom_count} atoms but {structure.name} has "
                    f"{structure.atom_count}.",
                }
            )
    return problems


def input_warnings(job: Job) -> list[dict[str, Any]]:
    """What the inputs say against the config that does not block it (a restart's step vs firsttimestep)."""
    steps = {f.name: f.facts["step"] for f in job.inputs.all() if isinstance(f.facts.get("step"), int)}
    if not steps:
        return []
    check = check_config(job.config_text, config_path=job.config_path, config_only=True, known_steps=steps)
    return [
        {"code": p.code, "message": p.message, "line": p.line}
        for p in check.warnings
        if p.code == "NAMD_FIRST_STEP_MISMATCH"
    ]


def start_submission(job: Job, *, actor_id: int | None, source: str) -> str:
    """READY -> SUBMITTING and the submit task enqueued; its id. Raises Conflict (JOB_STATE_CHANGED),
    BudgetExceeded (a soft budget gone over leaves a BUDGET_WARNING note).

    A pipeline step is never queued alone: its run's steps not yet submitted go as one chain."""
    if job.pipeline_id is not None:
        return start_pipeline_submission(job.pipeline, actor_id=actor_id, source=source)
    check_submission_budget([job], what="This job", source=source, actor_id=actor_id)
    if not transition(job, JobState.SUBMITTING, source=source, actor_id=actor_id, error_code="", error_message=""):
        raise Conflict("The job changed meanwhile; reload it.", code="JOB_STATE_CHANGED")
    return enqueue_on_commit(
        "jobs.tasks.submit_job_task", job.pk, actor_id or job.owner_id, queue=cluster_queue(job.profile_id)
    )


def start_pipeline_submission(pipeline: Pipeline, *, actor_id: int | None, source: str) -> str:
    """Every step not yet submitted -> SUBMITTING and one task to queue them as a chain; its id, "" when the
    run is already on its way. Raises Conflict (INPUTS_NOT_READY, PIPELINE_NOT_SUBMITTABLE, PIPELINE_STOPPED,
    CREDENTIAL_NOT_FOUND, JOB_STATE_CHANGED), BudgetExceeded (the steps' estimates together)."""
    steps = current_steps(pipeline)
    waiting = [step for step in steps if step.state in EDITABLE_STATES]
    if not waiting:
        if any(step.state == JobState.SUBMITTING for step in steps):
            return ""
        raise Conflict("Every step of this run was already submitted.", code="PIPELINE_NOT_SUBMITTABLE")
    first = waiting[0]
    if any(step.is_terminal and step.state != JobState.COMPLETED for step in steps if step.position < first.position):
        raise Conflict("A step before these did not complete; resume the run from it.", code="PIPELINE_STOPPED")
    if first.state != JobState.READY:
        problems = input_problems(first)
        raise Conflict(
            problems[0]["message"] if problems else "The inputs are still being checked.",
            code="INPUTS_NOT_READY",
            details={"problems": problems},
        )
    if not pipeline.owner.cluster_credentials.filter(profile=pipeline.profile).exists():
        raise Conflict("Add your credential for this cluster first.", code="CREDENTIAL_NOT_FOUND")
    check_submission_budget(waiting, what="This run", source=source, actor_id=actor_id)
    for step in waiting:
        if not transition(step, JobState.SUBMITTING, source=source, actor_id=actor_id, error_code="", error_message=""):
            raise Conflict("The run changed meanwhile; reload it.", code="JOB_STATE_CHANGED")
    return enqueue_on_commit(
        "jobs.tasks.submit_pipeline_task",
        pipeline.pk,
        actor_id or pipeline.owner_id,
        key=f"submit-pipeline:{pipeline.pk}",
        queue=cluster_queue(pipeline.profile_id),
    )


def refresh_readiness(job: Job, *, source: str = "task") -> None:
    """UPLOADING -> READY once every input is on the cluster and valid (and back if one is replaced)."""
    problems = input_problems(job)
    if job.state == JobState.UPLOADING and not problems:
        # The flag is read after the move to READY, not from `job`: a member who switched it on meanwhile saw
        # UPLOADING and left the submission to this call. If both submit, the conditional transition lets one in.
        if transition(job, JobState.READY, source=source):
            _after_ready(job, source)
    elif job.state == JobState.READY and problems:
        transition(job, JobState.UPLOADING, source=source, detail=problems[0]["message"])


def _after_ready(job: Job, source: str) -> None:
    """A job asked to submit when ready starts now; a sweep's point never starts on its own: its sweep's gate
    decides (the points that lack inputs get them there too), so the sweep's turn is ordered instead."""
    wanted, sweep_id, pipeline_sweep_id = (
        Job.objects.filter(pk=job.pk)
        .values_list("submit_when_ready", "sweep_point__sweep_id", "pipeline__sweep_point__sweep_id")
        .get()
    )
    if sweep_id or pipeline_sweep_id:
        order_sweep_advance(sweep_id or pipeline_sweep_id, profile_id=job.profile_id)  # a point is on its sweep's
    elif wanted:
        try:
            start_submission(job, actor_id=None, source=source)
        except BudgetExceeded as exc:  # the member asked for it: the refusal stays on the job
            record_task_failure(job, "BUDGET_REFUSED", exc)
        except Conflict:
            pass  # the job moved meanwhile: whoever moved it owns the submission


def order_sweep_advance(sweep_id: int, *, profile_id: int) -> str:
    """The sweep's next turn (inputs for the points that lack them, then the gate), one open order at a time,
    on the sweep's cluster's queue (the turn copies inputs there)."""
    return enqueue_on_commit(
        "jobs.tasks.advance_sweep_task", sweep_id, key=f"sweep-advance:{sweep_id}", queue=cluster_queue(profile_id)
    )


def refuse_point_submit(*, job_id: int | None = None, pipeline_id: int | None = None) -> None:
    """A sweep's point is submitted through its sweep, whose gate lets at most `max_running` points go at once.

    Raises Conflict (SWEEP_POINT_SUBMIT, with the sweep's id) when the job or the run is a point."""
    points = SweepPoint.objects.select_related("sweep")
    if pipeline_id is not None:
        point = points.filter(pipeline_id=pipeline_id).first()
    else:
        point = points.filter(job_id=job_id).first()
    if point is not None:
        raise Conflict(
            f"This is point {point.index} of the sweep “{point.sweep.title}”: submit the sweep, which starts its "
            "points as its limit on points running at once allows.",
            code="SWEEP_POINT_SUBMIT",
            details={"sweep_id": point.sweep_id},
        )
