"""Continuing a finished job: a new job that starts from its parent's .coor/.vel/.xsc at the last step.

The request creates the DRAFT; a task reads the parent's .xsc for the step, copies the restart files
and the parent's inputs the new config still reads (on the cluster, never through the portal) and
renders the config. A TIMEOUT job may continue itself (`continue_after_timeout`), at most
MAX_AUTO_CONTINUATIONS times in a chain.
"""

from __future__ import annotations

import re
import uuid
from pathlib import PurePosixPath
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from clusters import access as cluster_access
from jobs import layout, remote
from jobs.access import access_job_for_task, access_job_to_act
from jobs.models import TERMINAL_STATES, InputFile, Job, JobProgress, JobState
from jobs.namd_log import LogProgress
from jobs.pipeline_steps import step_output_name
from jobs.services.creation import NewJob, add_job, place_job, render_job
from jobs.services.inputs import input_roles
from jobs.services.pipelines import hand_inputs, inputs_holder, stop_after
from jobs.services.readiness import refresh_readiness
from jobs.transitions import note, record_task_failure, transition
from notifications import job_events
from portal.enqueue import enqueue_on_commit
from portal.errors import ClusterUnreachable, Conflict, PortalError
from portal.queues import cluster_queue
from templates_app import batch_script
from templates_app import selectors as template_selectors
from templates_app.models import Template, TemplateVersion
from templates_app.namd_config import extended_system_facts
from templates_app.protocols import restart_variables
from templates_app.specs import specs_from_json

RESTART_KEYWORDS = ("bincoordinates", "binvelocities", "extendedsystem")
RESTART_VARIABLES = ("restart_coordinates", "restart_velocities", "restart_cell")
RESTART_TEMPLATE_SLUG = "production-restart"
FIRST_STEP_VARIABLE = "first_step"
RUN_STEPS_VARIABLE = "run_steps"
MAX_AUTO_CONTINUATIONS = 10
MAX_XSC_BYTES = 64 * 1024  # an .xsc is a header and a line or two of numbers
OUTPUT_NAME_RE = re.compile(r"^\s*outputname\s+(\S+)", re.IGNORECASE | re.MULTILINE)


def _restart_version(parent: Job) -> TemplateVersion:
    """The parent's own template if it can restart (reads the three restart files and has first_step) or is a
    pipeline step continued CHARMM-GUI's way, else the latest production-restart. Raises Conflict
    (RESTART_TEMPLATE_MISSING)."""
    specs = specs_from_json(parent.template_version.variables)
    keywords = {spec.namd_keyword.lower() for spec in specs}
    if set(RESTART_KEYWORDS) <= keywords and any(spec.name == FIRST_STEP_VARIABLE for spec in specs):
        return parent.template_version
    stage = parent.protocol_stage
    if stage is not None and stage.continuation == stage.Continuation.CHARMM_GUI:
        return parent.template_version  # it continues through its input variable
    template = Template.objects.filter(slug=RESTART_TEMPLATE_SLUG).first()
    if template is None or not template.versions.exists():
        raise Conflict("No template can continue this job.", code="RESTART_TEMPLATE_MISSING")
    return template_selectors.latest_version(template)


def request_restart(
    *,
    user: User,
    job_id: int,
    values: dict[str, Any] | None = None,
    title: str = "",
    submit: bool = True,
    source: str = "user",
) -> tuple[Job, str]:
    """A new job continuing `job_id` from its .coor/.vel/.xsc at its last step; a task copies the files.

    Raises NotFound, Conflict (JOB_NOT_RESTARTABLE, RESTART_TEMPLATE_MISSING).
    """
    parent = access_job_to_act(user=user, job_id=job_id)
    if parent.state not in TERMINAL_STATES or parent.finished_at is None or not parent.slurm_job_id:
        raise Conflict("Only a job that ran and whose results are back can be continued.", code="JOB_NOT_RESTARTABLE")
    version = _restart_version(parent)
    if parent.pipeline_id is None:
        new, in_pipeline = place_job(owner=parent.owner, profile=parent.profile, slug=version.template.slug), {}
    else:
        new, in_pipeline = NewJob(uuid.uuid4(), parent.project_dir, parent.scratch_dir), _continuation_place(parent)
    names = {spec.name for spec in specs_from_json(version.variables)}
    carried = {name: value for name, value in parent.values.items() if name in names}
    with transaction.atomic():
        job = add_job(
            new=new,
            version=version,
            actor=user,
            source=source,
            detail=f"continues job {parent.pk} (SLURM {parent.slurm_job_id})",
            owner=parent.owner,
            profile=parent.profile,
            parent=parent,
            title=(title.strip() or f"{parent.title} (continued)")[:200],
            values={**carried, **(values or {})},
            resources=parent.resources,
            recipe_name=parent.recipe_name,
            continue_on_timeout=parent.continue_on_timeout,
            submit_when_ready=submit,
            **in_pipeline,
        )
        return job, enqueue_on_commit(
            "jobs.tasks.prepare_restart_task", job.pk, user.pk, queue=cluster_queue(job.profile_id)
        )


def _continuation_place(parent: Job) -> dict[str, Any]:
    """A pipeline step's continuation: same step, same folder, its own config and script files."""
    count = Job.objects.filter(pipeline_id=parent.pipeline_id, position=parent.position).count()
    stem = f"{step_output_name(parent) or 'step'}-cont{count}"
    folder = PurePosixPath(parent.config_path).parent
    return {
        "pipeline_id": parent.pipeline_id,
        "position": parent.position,
        "protocol_stage_id": parent.protocol_stage_id,
        "stage_name": parent.stage_name,
        "config_path": str(folder / f"{stem}.namd") if str(folder) != "." else f"{stem}.namd",
        "script_path": f"{stem}.sbatch",
    }


def _remaining_steps(parent: Job, job: Job, step: int) -> dict[str, int]:
    """For a timed-out parent, the steps it had left (unless the member chose run_steps): a continuation
    finishes what was asked instead of starting the whole run again."""
    if parent.state != JobState.TIMEOUT or job.values.get(RUN_STEPS_VARIABLE) != parent.values.get(RUN_STEPS_VARIABLE):
        return {}
    state = JobProgress.objects.filter(job=parent).values_list("log_state", flat=True).first()
    log = LogProgress.from_state(state) if state else None
    if log is None or not log.total_steps:
        return {}
    remaining = (log.first_step or 0) + log.total_steps - step
    return {RUN_STEPS_VARIABLE: remaining} if remaining > 0 else {}


def _restart_values(job: Job, parent: Job, tag: str, step: int) -> dict[str, Any]:
    """The new job's values: the restart files' names (by variable and by the keyword reading them), its step."""
    restart_names = dict(zip(RESTART_VARIABLES, (f"{tag}.coor", f"{tag}.vel", f"{tag}.xsc"), strict=True))
    values = {**job.values, **restart_names, FIRST_STEP_VARIABLE: step, **_remaining_steps(parent, job, step)}
    by_keyword = {
        spec.namd_keyword.lower(): spec.name
        for spec in specs_from_json(job.template_version.variables)
        if spec.namd_keyword
    }
    values.update({by_keyword[k]: restart_names[v] for k, v in zip(RESTART_KEYWORDS, RESTART_VARIABLES, strict=True)})
    return values


def prepare_restart(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Copy the parent's inputs and restart files into the new job's project dir, render, and make it READY.

    The .xsc files are read and every file copied from their remote realpaths, each checked to lie in the
    member's roots (a link out of them is REMOTE_PATH_FORBIDDEN), and an .xsc is read only up to
    MAX_XSC_BYTES (REMOTE_FILE_TOO_LARGE past it). Raises ClusterUnreachable (retry); other failures leave
    the job a DRAFT with the error code.
    """
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=job_id)
    parent = job.parent
    if job.state != JobState.DRAFT or parent is None or job.config_text:
        return
    if job.pipeline_id is not None:
        _prepare_step_continuation(job, parent, acting_user_id=acting_user_id, task_id=task_id)
        return
    match = OUTPUT_NAME_RE.search(parent.config_text)
    out = match.group(1) if match else "out"
    try:
        session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
        input_names = [
            parent_input.name
            for parent_input in parent.inputs.filter(state=InputFile.State.UPLOADED)
            if parent_input.role not in RESTART_KEYWORDS
        ]
        stems = [f"{parent.project_dir}/{out}.", f"{parent.project_dir}/{out}.restart."]
        paths = [f"{stem}{suffix}" for stem in stems for suffix in ("coor", "vel", "xsc")]
        paths += [f"{parent.project_dir}/{name}" for name in input_names]
        real = dict(zip(paths, session.confined_all(paths), strict=True))  # the member's links, resolved
        final, restart = session.run_sequence(
            remote.read_small_files_argvs([real[f"{stem}xsc"] for stem in stems], MAX_XSC_BYTES)
        )
        is_completed = parent.state == JobState.COMPLETED
        final_text = remote.small_file_text(final, MAX_XSC_BYTES) if is_completed else None
        prefix = f"{out}." if final_text is not None else f"{out}.restart."
        xsc_text = final_text if final_text is not None else remote.small_file_text(restart, MAX_XSC_BYTES)
        step = extended_system_facts(xsc_text).get("step") if xsc_text is not None else None
        if step is None:
            message = "The parent job left no restart files (.xsc) to continue from."
            raise Conflict(message, code="RESTART_FILES_MISSING")
        tag = layout.restart_tag(parent.uuid)
        recipe = cluster_access.access_launch_recipe(profile=job.profile, name=job.recipe_name)
        config, script, values = render_job(
            job_uuid=job.uuid,
            version=job.template_version,
            values=_restart_values(job, parent, tag, step),
            profile=job.profile,
            recipe=recipe,
            resources=batch_script.Resources(**job.resources),
            title=job.title,
            scratch_dir=job.scratch_dir,
        )
        wanted = input_roles(config, job.config_path)
        copies = {}  # new name -> parent's file
        for name in input_names:
            if name in wanted:
                copies[name] = f"{parent.project_dir}/{name}"
        for suffix in ("coor", "vel", "xsc"):
            copies[f"{tag}.{suffix}"] = f"{parent.project_dir}/{prefix}{suffix}"
        remote.make_dirs(session, job.project_dir)
        results = session.run_sequence(
            remote.copy_files_argvs({f"{job.project_dir}/{name}": real[source] for name, source in copies.items()})
            + [remote.atom_count_argv(f"{job.project_dir}/{tag}.{suffix}") for suffix in ("coor", "vel")]
            + [remote.size_argv(f"{job.project_dir}/{name}") for name in copies]
        )
    except ClusterUnreachable:
        raise
    except PortalError as exc:
        record_task_failure(job, "RESTART_FAILED", exc)
        return
    failed = [name for name, result in zip(copies, results, strict=False) if result.exit_code != 0]
    if failed:
        Job.objects.filter(pk=job.pk).update(
            error_code="RESTART_COPY_FAILED", error_message=f"Could not copy {', '.join(failed)}."
        )
        note(job, "RESTART_FAILED", source="task", detail=f"could not copy {', '.join(failed)}")
        return
    atom_counts = [
        int(r.stdout.split()[0]) if r.stdout.split() else None for r in results[len(copies) : len(copies) + 2]
    ]
    sizes = [int(r.stdout.strip() or 0) for r in results[len(copies) + 2 :]]
    parent_inputs = {f.name: f for f in parent.inputs.all()}
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(config_text=config, batch_script=script, values=values)
        job.config_text = config
        for (name, source), size in zip(copies.items(), sizes, strict=True):
            count = parent_inputs[name].atom_count if name in parent_inputs else None
            if name.endswith((".coor", ".vel")) and name.startswith(tag):
                count = atom_counts[0 if name.endswith(".coor") else 1]
            InputFile.objects.create(
                job=job,
                name=name,
                role=wanted.get(name, ""),
                size_bytes=size,
                atom_count=count,
                state=InputFile.State.UPLOADED,
                bytes_uploaded=size,
                copied_from=source,
                uploaded_at=timezone.now(),
                sha256=parent_inputs[name].sha256 if name in parent_inputs else "",
            )
        transition(job, JobState.UPLOADING, source="task", detail=f"continues from step {step}")
        refresh_readiness(job)


def _prepare_step_continuation(job: Job, parent: Job, *, acting_user_id: int, task_id: str) -> None:
    """A pipeline step's continuation, in the run's folder: from the parent's `<output>.restart.*` files (the
    restart mapping's variables, or the stage's input variable), the run's inputs handed over, nothing copied.
    A failure leaves the job a DRAFT with its code and stops the run after the parent."""
    out = step_output_name(parent) or "out"
    folder = PurePosixPath(parent.config_path).parent
    restart = f"{out}.restart"
    try:
        session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
        (xsc,) = session.confined_all([f"{parent.project_dir}/{folder / restart}.xsc"])
        (read,) = session.run_sequence(remote.read_small_files_argvs([xsc], MAX_XSC_BYTES))
        xsc_text = remote.small_file_text(read, MAX_XSC_BYTES)
        step = extended_system_facts(xsc_text).get("step") if xsc_text is not None else None
        if step is None:
            raise Conflict(
                "The timed-out step left no restart files (.xsc) to continue from.", code="RESTART_FILES_MISSING"
            )
        specs = specs_from_json(job.template_version.variables)
        mapping = restart_variables(specs)
        values = dict(job.values)
        if mapping:
            values.update({name: f"{restart}.{suffix}" for suffix, name in mapping.items()})
            if any(spec.name == FIRST_STEP_VARIABLE for spec in specs):
                values[FIRST_STEP_VARIABLE] = step
            values.update(_remaining_steps(parent, job, step))
        elif job.protocol_stage is not None:
            values[job.protocol_stage.input_variable] = restart
        recipe = cluster_access.access_launch_recipe(profile=job.profile, name=job.recipe_name)
        config, script, values = render_job(
            job_uuid=job.uuid,
            version=job.template_version,
            values=values,
            profile=job.profile,
            recipe=recipe,
            resources=batch_script.Resources(**job.resources),
            title=job.title,
            scratch_dir=job.scratch_dir,
            config_filename=job.config_path,
        )
    except ClusterUnreachable:
        raise
    except PortalError as exc:
        record_task_failure(job, "RESTART_FAILED", exc)
        stop_after(parent)
        return
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(config_text=config, batch_script=script, values=values)
        job.config_text, job.batch_script, job.values = config, script, values
        holder = inputs_holder(parent.pipeline)
        if holder is not None:
            hand_inputs(holder, job)
        transition(job, JobState.UPLOADING, source="task", detail=f"continues step {job.position} from step {step}")
        refresh_readiness(job)


def will_continue(job: Job) -> bool:
    """Whether a TIMEOUT job continues itself (asked for, and its chain of continuations is not too long)."""
    return job.state == JobState.TIMEOUT and job.continue_on_timeout and _continuations(job) < MAX_AUTO_CONTINUATIONS


def _continuations(job: Job) -> int:
    depth, ancestor = 0, job
    while ancestor.parent_id is not None and depth <= MAX_AUTO_CONTINUATIONS:
        ancestor, depth = ancestor.parent, depth + 1
    return depth


def continue_after_timeout(job: Job) -> None:
    """The automatic continuation of a job SLURM timed out, if asked for and the chain is not too long."""
    if _continuations(job) >= MAX_AUTO_CONTINUATIONS:
        note(job, "AUTO_CONTINUE_STOPPED", source="task", detail=f"{MAX_AUTO_CONTINUATIONS} continuations reached")
        return
    with transaction.atomic():  # the continuation, its note and its message together
        child, _ = request_restart(user=job.owner, job_id=job.pk, submit=True, source="task")
        note(job, "CONTINUED", source="task", detail=f"continued as job {child.pk}")
        job_events.job_continued(job, child)
