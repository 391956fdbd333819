"""What a job, a pipeline run or a sweep tells its owner, and when: called where jobs change, in their transaction.

- a job's results are back (`job_finished`): COMPLETED -> job_completed; FAILED, OUT_OF_MEMORY, NODE_FAIL,
  PREEMPTED, LOST and a TIMEOUT that does not continue -> job_failed; CANCELLED (the member's own doing)
  tells nothing. A step of a run or a point of a sweep tells nothing of its own: when the last of a run's
  or sweep's jobs settles, ONE digest (run_ended) tells the whole. The caller holds the run's or sweep's row
  lock, so of two of its jobs settling at once exactly one sees the whole settled;
- `job_stalled`: the STALLED note (the NAMD log stopped moving);
- `job_continued`: the automatic continuation after TIMEOUT (not for a sweep's points: their digest tells).
Every message says what happened, the error's code and sentence when there is one, what to do next, and
links the page. Must never know how a message is sent.
"""

from __future__ import annotations

from collections import Counter

from django.urls import reverse

from jobs.metadata import sweep_point_of
from jobs.models import TERMINAL_STATES, Job, JobEvent, JobState, Pipeline, Sweep
from jobs.pipeline_steps import current_steps, pipeline_status
from jobs.sweep_selectors import point_states
from notifications.models import Event
from notifications.services import absolute_link, notify

FAILED_STATES = frozenset(
    {JobState.FAILED, JobState.OUT_OF_MEMORY, JobState.NODE_FAIL, JobState.PREEMPTED, JobState.LOST, JobState.TIMEOUT}
)
NEXT_STEP = {
    JobState.FAILED: "Read the end of the NAMD log on the job's page (it says why), fix the cause and restart it.",
    JobState.OUT_OF_MEMORY: "Ask for more memory (or fewer atoms per core) and restart it.",
    JobState.NODE_FAIL: "A compute node failed under it: restart it (or continue it from its restart files).",
    JobState.PREEMPTED: "SLURM preempted it for other work: continue it from its restart files.",
    JobState.LOST: "SLURM has no record of it: check its folders on the cluster, then restart it.",
    JobState.TIMEOUT: "It reached its walltime: continue it from its restart files, or ask for more time.",
    JobState.COMPLETED: "Its results are in its project folder; download them from the job's page.",
}
DIGEST_LISTED = 10  # the points or steps that did not complete, named one by one up to this many


def _job_link(job: Job) -> str:
    return absolute_link(reverse("frontend:job_detail", args=[job.pk]))


def _error_line(job: Job) -> str:
    if not job.error_code:
        return ""
    return f"\n{job.error_code}: {job.error_message}"


def _job_fields(job: Job) -> dict[str, object]:
    return {
        "job_id": job.pk,
        "title": job.title,
        "state": job.state,
        "slurm_job_id": job.slurm_job_id,
        "exit_code": job.exit_code,
        "error_code": job.error_code,
        "error_message": job.error_message,
    }


def job_finished(job: Job, *, continues: bool) -> None:
    """A job's results are back (the caller's transaction holds its run's or sweep's lock)."""
    if continues:
        return  # its continuation tells (job_continued), and its run or sweep is not over
    point = sweep_point_of(job)
    if point is not None:
        _sweep_if_settled(point.sweep, job)
    elif job.pipeline_id is not None:
        _run_if_settled(job.pipeline, job)
    elif job.state == JobState.COMPLETED:
        _tell_job_end(job, Event.JOB_COMPLETED, "completed")
    elif job.state in FAILED_STATES:
        _tell_job_end(job, Event.JOB_FAILED, job.get_state_display().lower())


def _tell_job_end(job: Job, event: str, how: str) -> None:
    exit_code = f" (exit code {job.exit_code})" if job.exit_code not in (None, 0) else ""
    text = f"The job “{job.title}” {how}{exit_code} on {job.profile.name}.{_error_line(job)}\n{NEXT_STEP[job.state]}"
    notify(
        job.owner,
        event,
        subject=f"Job {how}: {job.title}",
        text=text,
        link=_job_link(job),
        key=f"job:{job.pk}:end",
        fields=_job_fields(job),
    )


def job_stalled(job: Job, event: JobEvent) -> None:
    """The STALLED note was written for a running job."""
    notify(
        job.owner,
        Event.JOB_STALLED,
        subject=f"Job stalled: {job.title}",
        text=(
            f"The NAMD log of “{job.title}” has had no new TIMING line for much longer than usual; it may hang.\n"
            "Look at its log on the job's page; cancel it if it does not move again."
        ),
        link=_job_link(job),
        key=f"job:{job.pk}:stalled:{event.pk}",
        fields=_job_fields(job),
    )


def job_continued(job: Job, child: Job) -> None:
    """A TIMEOUT job continued itself as `child`."""
    if sweep_point_of(job) is not None:
        return
    notify(
        job.owner,
        Event.JOB_CONTINUED,
        subject=f"Job continued after its walltime: {job.title}",
        text=(
            f"“{job.title}” reached its walltime and continues from its restart files as job {child.pk}.\n"
            "Nothing to do; follow the new job on its page."
        ),
        link=_job_link(child),
        key=f"job:{job.pk}:continued",
        fields={**_job_fields(job), "continued_as_job_id": child.pk},
    )


def _run_if_settled(pipeline: Pipeline, job: Job) -> None:
    steps = current_steps(pipeline)
    status = pipeline_status(steps, cancel_requested=pipeline.cancel_requested_at is not None)
    if status.state not in ("COMPLETED", "FAILED", "CANCELLED") or any(step.awaits_cluster for step in steps):
        return
    states = Counter(step.state for step in steps)
    stopped = [step for step in steps if step.state != JobState.COMPLETED][:DIGEST_LISTED]
    lines = [
        f"Step {step.position} ({step.stage_name}): {step.get_state_display()}{_error_line(step)}" for step in stopped
    ]
    what_next = (
        "Its results are in the run's project folder."
        if status.state == "COMPLETED"
        else "Open the run's page: resume it from the step that failed once the cause is fixed."
    )
    _tell_group_end(
        pipeline.owner,
        kind="run",
        title=pipeline.title,
        how=status.state.lower(),
        counts=states,
        lines=lines,
        what_next=what_next,
        link=absolute_link(reverse("frontend:pipeline_detail", args=[pipeline.pk])),
        key=f"pipeline:{pipeline.pk}:ended:{job.pk}",
        fields={"pipeline_id": pipeline.pk, "state": status.state, "steps": dict(states)},
    )


def _sweep_if_settled(sweep: Sweep, job: Job) -> None:
    points = point_states(sweep)
    if not points or any(point.is_active or point.state not in TERMINAL_STATES for point in points):
        return  # a point not sent yet, waiting for a place or for the cluster: the sweep is not over
    states = Counter(point.state for point in points)
    not_completed = [point for point in points if point.state != JobState.COMPLETED]
    lines = [f"Point {point.index}: {point.state}" for point in not_completed[:DIGEST_LISTED]]
    if len(not_completed) > DIGEST_LISTED:
        lines.append(f"… and {len(not_completed) - DIGEST_LISTED} more.")
    what_next = (
        "Compare the points on the sweep's page (plot and CSV)."
        if not not_completed
        else "Open the sweep's page: each point's error is in its row; “Retry failed” runs them again."
    )
    _tell_group_end(
        sweep.owner,
        kind="sweep",
        title=sweep.title,
        how="completed" if not not_completed else "ended",
        counts=states,
        lines=lines,
        what_next=what_next,
        link=absolute_link(reverse("frontend:sweep_detail", args=[sweep.pk])),
        key=f"sweep:{sweep.pk}:ended:{job.pk}",
        fields={"sweep_id": sweep.pk, "points": len(points), "states": dict(states)},
    )


def _tell_group_end(
    owner,
    *,
    kind: str,
    title: str,
    how: str,
    counts: Counter,
    lines: list[str],
    what_next: str,
    link: str,
    key: str,
    fields: dict[str, object],
) -> None:
    total = sum(counts.values())
    summary = ", ".join(f"{count} {state.lower()}" for state, count in sorted(counts.items()))
    noun = "points" if kind == "sweep" else "steps"
    body = "\n".join([f"The {kind} “{title}” {how}: {total} {noun}, {summary}.", *lines, what_next])
    notify(
        owner,
        Event.RUN_ENDED,
        subject=f"{kind.capitalize()} {how}: {title}",
        text=body,
        link=link,
        key=key,
        fields=fields,
    )
