"""Pipeline runs: a protocol's steps as jobs sharing one folder, queued at once as a SLURM afterok chain.

Creation renders every step (its version pinned then) into the run's one project folder and one
scratch folder, each step with its own config, script and output name, so CHARMM-GUI's configs run
unchanged. The member uploads the run's inputs once, to the step that holds them (the first not yet
submitted). Submission queues every unsubmitted step in one exec (`SlurmClient.submit_chain`); a
retried task adopts the steps SLURM already has by their tags and queues only the rest behind them.
A step that ends FAILED, CANCELLED, OUT_OF_MEMORY, NODE_FAIL (or TIMEOUT without a continuation)
stops the run: the steps after it are cancelled in SLURM at once and say "not run: step K failed";
`resume_pipeline` adds new jobs from step K on. A TIMEOUT step's continuation takes its place in
the chain (`relink_after_continuation`). Cancel and the sync treat steps as ordinary jobs.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from clusters import access as cluster_access
from clusters.file_tar import tar_of, untar_argv
from clusters.slurm import ChainStagingFailed, ChainStep, PreludeCommand, SlurmError
from jobs import remote
from jobs.access import access_pipeline, access_pipeline_for_task, access_pipeline_to_act
from jobs.models import EDITABLE_STATES, QUEUED_STATES, TERMINAL_STATES, InputFile, Job, JobState, Pipeline
from jobs.pipeline_steps import current_steps
from jobs.services.cancellation import cancel_in_slurm
from jobs.services.creation import NewJob, add_job, place_job, render_job
from jobs.services.inputs import StagedInput, register_staged_inputs, uploaded_copy
from jobs.services.readiness import input_problems, refresh_readiness, refuse_point_submit, start_pipeline_submission
from jobs.transitions import note, transition
from portal.enqueue import enqueue_on_commit
from portal.errors import ClusterUnreachable, Conflict, InvalidInput, PortalError, RemoteCommandError
from portal.queues import cluster_queue
from portal.task_orders import ensure_still_held
from templates_app import access as template_access
from templates_app import batch_script
from templates_app.models import Protocol, ProtocolStage, TemplateVersion
from templates_app.namd_config import check_config
from templates_app.protocol_services import pinned_stages, stage_rule
from templates_app.protocols import StageRule, StepPlan, plan_steps, protocol_problems, stage_values
from templates_app.specs import specs_from_json

FAILED_STEP_STATES = TERMINAL_STATES - {JobState.COMPLETED}


@dataclasses.dataclass(frozen=True)
class PipelineRequest:
    protocol_id: int
    cluster_id: int
    recipe: str
    title: str
    values: dict[str, Any]  # asked once, for every stage whose template has the variable
    stage_values: dict[int, dict[str, Any]]  # per stage position, over the shared ones
    resources: batch_script.Resources  # the run's; a stage's own resources override them
    continue_on_timeout: bool = True


@dataclasses.dataclass(frozen=True)
class PlannedStep:
    """One step of a run as planned, before rendering: its stage, version, values, resources and files."""

    plan: StepPlan
    stage: ProtocolStage
    version: TemplateVersion
    values: dict[str, Any]  # the stage's values and what the step sets to continue, as given (defaults not filled)
    resources: dict[str, Any]  # the run's, the stage's own over them
    recipe_name: str  # the stage's own, else the run's
    config_path: str
    script_path: str


@dataclasses.dataclass(frozen=True)
class _RenderedStep:
    plan: StepPlan
    stage: ProtocolStage
    version: TemplateVersion
    new: NewJob
    config_path: str
    script_path: str
    config: str
    script: str
    values: dict[str, Any]
    resources: dict[str, Any]
    recipe_name: str


def access_runnable_protocol(*, user: User, protocol_id: int) -> Protocol:
    """A protocol the user may run now. Raises NotFound (PROTOCOL_NOT_FOUND), Conflict (PROTOCOL_RETIRED)."""
    protocol = template_access.access_protocol(user=user, protocol_id=protocol_id)
    if protocol.is_retired:
        raise Conflict("This protocol is retired; choose another.", code="PROTOCOL_RETIRED")
    return protocol


def _rule(protocol: Protocol, stage: ProtocolStage, version: TemplateVersion, request: PipelineRequest) -> StageRule:
    """The stage's step-plan rule with the member's values: the protocol's shared values, then the member's,
    then the stage's own, then the member's for that stage (each only where the template has the variable)."""
    specs = specs_from_json(version.variables)
    rule = stage_rule(stage, specs, protocol.shared_values)
    values = stage_values(
        specs,
        {**protocol.shared_values, **request.values},
        {**stage.values, **request.stage_values.get(stage.position, {})},
    )
    return dataclasses.replace(rule, values=values)


def _step_files(version: TemplateVersion, output_name: str) -> tuple[str, str]:
    """(config path, script path) of a step in the shared folder: named by its output name."""
    folder = version.workdir.strip("/")
    config = f"{folder}/{output_name}.namd" if folder else f"{output_name}.namd"
    return config, f"{output_name}.sbatch"


def plan_run(
    *, protocol: Protocol, request: PipelineRequest, pinned: dict[int | None, TemplateVersion] | None = None
) -> list[PlannedStep]:
    """Every step of a run of `protocol` with `request`'s values, with the stages' latest versions or those
    `pinned` (by stage id) to the run. Writes nothing. Raises InvalidInput (VALUE_UNKNOWN_VARIABLE,
    STAGE_UNKNOWN, PROTOCOL_INVALID)."""
    items = pinned_stages(protocol)
    stages = {item.stage.position: item.stage for item in items}
    versions = {item.stage.pk: (pinned or {}).get(item.stage.pk) or item.version for item in items}
    rules = [_rule(protocol, stage, versions[stage.pk], request) for stage in stages.values()]
    _check_names(rules, request)
    problems = protocol_problems(rules)
    if problems:
        raise InvalidInput(problems[0], code="PROTOCOL_INVALID", details={"problems": problems})
    by_position = {rule.position: rule for rule in rules}
    planned = []
    for plan in plan_steps(rules):
        stage, rule = stages[plan.stage_position], by_position[plan.stage_position]
        names = {spec.name for spec in rule.specs}
        config_file, script_file = _step_files(versions[stage.pk], plan.output_name)
        planned.append(
            PlannedStep(
                plan=plan,
                stage=stage,
                version=versions[stage.pk],
                values={name: value for name, value in {**rule.values, **plan.values}.items() if name in names},
                resources={**dataclasses.asdict(request.resources), **stage.resources},
                recipe_name=stage.recipe_name or request.recipe,
                config_path=config_file,
                script_path=script_file,
            )
        )
    return planned


def _render_steps(
    *,
    user: User,
    protocol: Protocol,
    request: PipelineRequest,
    folders: NewJob,
    title: str,
    pinned: dict[int | None, TemplateVersion] | None = None,
) -> list[_RenderedStep]:
    """Every step of `plan_run` rendered. Raises InvalidInput (PROTOCOL_INVALID, resource codes), TemplateError."""
    profile = cluster_access.access_profile(user=user, profile_id=request.cluster_id)
    rendered = []
    for step in plan_run(protocol=protocol, request=request, pinned=pinned):
        recipe = cluster_access.access_launch_recipe(profile=profile, name=step.recipe_name)
        new = NewJob(uuid.uuid4(), folders.project_dir, folders.scratch_dir)
        config, script, full_values = render_job(
            job_uuid=new.uuid,
            version=step.version,
            values=step.values,
            profile=profile,
            recipe=recipe,
            resources=batch_script.Resources(**step.resources),
            title=f"{title}: {step.plan.label}",
            scratch_dir=folders.scratch_dir,
            config_filename=step.config_path,
        )
        rendered.append(
            _RenderedStep(
                step.plan,
                step.stage,
                step.version,
                new,
                step.config_path,
                step.script_path,
                config,
                script,
                full_values,
                step.resources,
                recipe.name,
            )
        )
    return rendered


def _check_names(rules: list[StageRule], request: PipelineRequest) -> None:
    """Every value the member gave names a variable of a stage that takes it. Raises InvalidInput
    (VALUE_UNKNOWN_VARIABLE, STAGE_UNKNOWN)."""
    names = {rule.position: {spec.name for spec in rule.specs} for rule in rules}
    unknown_stages = sorted(set(request.stage_values) - set(names))
    if unknown_stages:
        raise InvalidInput(f"The protocol has no stage {unknown_stages[0]}.", code="STAGE_UNKNOWN")
    unknown = sorted(set(request.values) - set().union(*names.values()))
    unknown += [
        f"{name} (stage {position})"
        for position, values in sorted(request.stage_values.items())
        for name in sorted(set(values) - names[position])
    ]
    if unknown:
        raise InvalidInput(
            f"{unknown[0]}: no stage of this protocol has such a variable.",
            code="VALUE_UNKNOWN_VARIABLE",
            details={"names": unknown},
        )


def create_pipeline(*, user: User, request: PipelineRequest) -> Pipeline:
    """A pipeline run with every step a DRAFT job in one folder; step 1 holds the inputs (and the templates'
    assets). Raises NotFound, Conflict (PROTOCOL_RETIRED), InvalidInput, TemplateError."""
    protocol = access_runnable_protocol(user=user, protocol_id=request.protocol_id)
    profile = cluster_access.access_profile(user=user, profile_id=request.cluster_id)
    folders = place_job(owner=user, profile=profile, slug=protocol.slug)
    title = (request.title.strip() or protocol.name)[:200]
    steps = _render_steps(user=user, protocol=protocol, request=request, folders=folders, title=title)
    assets = {
        asset.relpath: StagedInput(
            asset.relpath, Path(asset.stored_path), asset.size_bytes, asset.sha256, is_template_asset=True
        )
        for step in steps
        for asset in step.version.assets.all()
    }
    with transaction.atomic():
        pipeline = Pipeline.objects.create(
            uuid=folders.uuid,
            owner=user,
            profile=profile,
            protocol=protocol,
            title=title,
            values=request.values,
            stage_values={str(position): values for position, values in request.stage_values.items()},
            resources=dataclasses.asdict(request.resources),
            recipe_name=request.recipe,
            continue_on_timeout=request.continue_on_timeout,
            project_dir=folders.project_dir,
            scratch_dir=folders.scratch_dir,
        )
        jobs = [_add_step(pipeline, step, user=user) for step in steps]
        if assets:
            register_staged_inputs(user=user, job=jobs[0], staged=list(assets.values()))
    return pipeline


def _add_step(pipeline: Pipeline, step: _RenderedStep, *, user: User, detail: str = "") -> Job:
    return add_job(
        new=step.new,
        version=step.version,
        actor=user,
        source="user",
        detail=detail or f"step {step.plan.position} of pipeline {pipeline.pk}",
        owner=pipeline.owner,
        profile=pipeline.profile,
        title=f"{pipeline.title}: {step.plan.label}"[:200],
        values=step.values,
        resources=step.resources,
        recipe_name=step.recipe_name,
        config_text=step.config,
        batch_script=step.script,
        continue_on_timeout=pipeline.continue_on_timeout,
        pipeline=pipeline,
        position=step.plan.position,
        protocol_stage=step.stage,
        stage_name=step.plan.label[:120],
        config_path=step.config_path,
        script_path=step.script_path,
    )


def request_submit_pipeline(*, user: User, pipeline_id: int) -> tuple[Pipeline, str]:
    """Every step not yet submitted -> SUBMITTING, one task queues them as a chain; its id ("" when on its way).

    Raises NotFound, Forbidden, Conflict (INPUTS_NOT_READY, PIPELINE_NOT_SUBMITTABLE, PIPELINE_STOPPED,
    CREDENTIAL_NOT_FOUND, SWEEP_POINT_SUBMIT)."""
    with transaction.atomic():
        pipeline = access_pipeline_to_act(user=user, pipeline_id=pipeline_id, for_update=True)
        refuse_point_submit(pipeline_id=pipeline.pk)
        return pipeline, start_pipeline_submission(pipeline, actor_id=user.pk, source="user")


def _staging(session: Any, pipeline: Pipeline, sending: list[Job]) -> list[PreludeCommand]:
    """What the chain's exec does before queueing: the folders made, every step's config and script unpacked
    in the project folder, the inputs and configs copied to scratch. Their paths are checked first (one exec:
    every folder's realpath in the member's roots), so the submission is two execs whatever the steps.
    Raises Forbidden, PortalErrors."""
    holder = sending[0]
    outputs = {
        folder
        for step in sending
        for folder in check_config(step.config_text, config_path=step.config_path, config_only=True).output_dirs
    }
    folders = [
        *remote.input_dirs(holder, [step.config_path for step in sending]),
        pipeline.scratch_dir,
        *(f"{pipeline.scratch_dir}/{folder}" for folder in sorted(outputs)),
    ]
    project, scratch, *_ = session.confined_all([pipeline.project_dir, pipeline.scratch_dir, *folders])
    files = {step.config_path: step.config_text.encode() for step in sending}
    files.update({step.script_path: step.batch_script.encode() for step in sending})
    names = [
        *holder.inputs.filter(state=InputFile.State.UPLOADED).values_list("name", flat=True),
        *(step.config_path for step in sending),
    ]
    return [
        PreludeCommand(["mkdir", "-p", "--", *folders]),
        PreludeCommand(untar_argv(project), tar_of(files)),
        PreludeCommand(remote.copy_tree_argv(project, scratch), remote.file_list(names)),
    ]


STAGING_SENTENCES = {  # the prelude's commands (`_staging`), by name: what failed, and what the member can do
    "mkdir": "The run's folders could not be made on the cluster (is the disk or your quota full?).",
    "tar": "The run's configs and batch scripts could not be written on the cluster (is the disk or your quota full?).",
    "rsync": (
        "The run's inputs could not be copied to its scratch folder: one is missing from the project folder on the "
        "cluster (upload it again), or the disk or your quota is full."
    ),
}


def _staging_error(failure: ChainStagingFailed) -> RemoteCommandError:
    """A failed prelude command as the member reads it (nothing was queued)."""
    sentence = STAGING_SENTENCES.get(failure.command, "The run's files could not be written on the cluster.")
    return RemoteCommandError(sentence, code="STAGING_FAILED")


def _adopted(found: dict[str, list[str]], sending: list[Job], names: dict[int, str]) -> dict[int, str]:
    """The steps SLURM already has (a retry after a lost reply), from the first on: their ids by job id."""
    adopted = {}
    for step in sending:
        ids = found.get(names[step.pk], [])
        if not ids:
            break
        adopted[step.pk] = ids[-1]
    return adopted


def submit_pipeline(*, pipeline_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Queue the run's SUBMITTING steps as one afterok chain (behind a step still queued, if any); never twice.

    Raises ClusterUnreachable (the task retries: the steps queued so far are PENDING, a retry adopts by tag
    and queues the rest); a refusal puts the steps not queued back to wait, the first holding the inputs.
    """
    pipeline = access_pipeline_for_task(acting_user_id=acting_user_id, pipeline_id=pipeline_id)
    steps = current_steps(pipeline)
    sending = [step for step in steps if step.state == JobState.SUBMITTING and not step.slurm_job_id]
    if not sending:
        return
    before = [step for step in steps if step.position < sending[0].position]
    after = before[-1].slurm_job_id if before and before[-1].state in QUEUED_STATES else None
    Job.objects.filter(pk=sending[0].pk).update(submit_attempts=F("submit_attempts") + 1)
    attempts = Job.objects.values_list("submit_attempts", flat=True).get(pk=sending[0].pk)
    names = {step.pk: batch_script.job_name(step.uuid, step.title) for step in sending}
    try:
        session = remote.member_session(sending[0], acting_user_id=acting_user_id, task_id=task_id)
        staging = _staging(session, pipeline, sending)
        client = session.slurm()
        ids = _adopted(client.find_by_names(list(names.values())), sending, names) if attempts > 1 else {}
        rest = sending[len(ids) :]
        error = None
        if rest:
            ensure_still_held()  # a run whose order was taken over must not queue the steps a second time
            last = ids[sending[len(ids) - 1].pk] if ids else after
            chain = [ChainStep(f"{pipeline.project_dir}/{step.script_path}", names[step.pk]) for step in rest]
            result = client.submit_chain(chain, after=last, prelude=staging)
            ids.update({step.pk: job_id for step, job_id in zip(rest, result.job_ids, strict=True) if job_id})
            error = result.error
    except ChainStagingFailed as exc:
        _back_to_waiting(sending, _staging_error(exc))
        return
    except SlurmError as exc:
        raise ClusterUnreachable(
            "SLURM did not answer as expected; the portal will retry.", code="SLURM_ERROR"
        ) from exc
    except ClusterUnreachable:
        raise
    except PortalError as exc:
        _back_to_waiting(sending, exc)
        return
    _mark_queued(session, [step for step in sending if step.pk in ids], ids, adopted_before=attempts > 1)
    if sending[0].pk in ids and sending[0].parent_id is not None and sending[0].parent.pipeline_id == pipeline.pk:
        relink_after_continuation(session, Job.objects.get(pk=sending[0].pk))
    if error is not None:
        if error.is_transient:
            raise ClusterUnreachable(error.message, code=error.code)
        _back_to_waiting([step for step in sending if step.pk not in ids], InvalidInput(error.message, code=error.code))
    if Pipeline.objects.filter(pk=pipeline.pk, cancel_requested_at__isnull=False).exists():
        cancel_steps(pipeline, acting_user_id=acting_user_id, task_id=task_id)


def _mark_queued(session: Any, queued: list[Job], ids: dict[int, str], *, adopted_before: bool) -> None:
    now = timezone.now()
    for step in queued:
        transition(
            step,
            JobState.PENDING,
            source="task",
            expected=JobState.SUBMITTING,
            detail=f"SLURM job {ids[step.pk]} in the chain"
            + (" (found by its tag after a retry)" if adopted_before else ""),
            slurm_job_id=ids[step.pk],
            submitted_at=now,
            slurm_state="PENDING",
            error_code="",
            error_message="",
        )
    remote.write_metadata(session, *queued)


def hand_inputs(source: Job, target: Job) -> None:
    """The run's inputs (already in the shared folder) become `target`'s: rows only, nothing is copied."""
    have = set(target.inputs.values_list("name", flat=True))
    InputFile.objects.bulk_create(
        uploaded_copy(item, job=target, source_dir=source.project_dir)
        for item in source.inputs.filter(state=InputFile.State.UPLOADED)
        if item.name not in have
    )


def inputs_holder(pipeline: Pipeline) -> Job | None:
    """The newest step that holds the run's inputs."""
    return pipeline.steps.exclude(inputs=None).order_by("-pk").first()


def _back_to_waiting(steps: list[Job], error: PortalError) -> None:
    """Steps SLURM did not take back to wait for a new submit: the first holds the inputs and says why."""
    if not steps:
        return
    holder = inputs_holder(steps[0].pipeline)
    first, *others = steps
    detail = f"{error.code}: {error.user_message}"
    for step in others:
        transition(step, JobState.DRAFT, source="task", expected=JobState.SUBMITTING, detail=detail)
    if holder is not None and holder.pk != first.pk:
        hand_inputs(holder, first)
    first.refresh_from_db()
    state = JobState.UPLOADING if input_problems(first) else JobState.READY
    transition(
        first,
        state,
        source="task",
        expected=JobState.SUBMITTING,
        detail=detail,
        error_code=error.code,
        error_message=error.user_message[:500],
    )


def pipeline_submission_gave_up(*, pipeline_id: int, error: PortalError) -> None:
    """After the last retry: the steps still SUBMITTING back to wait, so the member can submit again."""
    pipeline = Pipeline.objects.filter(pk=pipeline_id).first()
    if pipeline is not None:
        _back_to_waiting([s for s in current_steps(pipeline) if s.state == JobState.SUBMITTING], error)


def pipeline_submission_waits(*, pipeline_id: int, error: Exception, give_up_at: Any) -> None:
    """The cluster did not answer: the steps stay SUBMITTING and say until when the portal keeps trying."""
    code = getattr(error, "code", "CLUSTER_UNREACHABLE")
    until = timezone.localtime(give_up_at).strftime("%H:%M %Z")
    message = f"The cluster did not answer; the portal keeps trying until {until}, then puts the run back to ready."
    Job.objects.filter(pipeline_id=pipeline_id, state=JobState.SUBMITTING).update(
        error_code=code, error_message=message
    )


def stop_after(job: Job, *, task_id: str = "") -> None:
    """A step that did not complete: the steps after it are cancelled in SLURM now (one scancel) and marked
    "not run". Idempotent (a retried finish runs it again). Raises ClusterUnreachable."""
    later = [
        step
        for step in current_steps(job.pipeline)
        if step.position > (job.position or 0)
        and step.state not in TERMINAL_STATES
        and step.state != JobState.SUBMITTING
    ]
    if not later:
        return
    queued = [step.slurm_job_id for step in later if step.slurm_job_id]
    if queued:
        session = remote.member_session(job, acting_user_id=None, task_id=task_id)  # the sync's follow-up
        try:
            session.slurm().cancel(*queued)
        except SlurmError as exc:
            raise ClusterUnreachable(
                "SLURM did not cancel the steps after a failed one; retrying.", code="SCANCEL_FAILED"
            ) from exc
    message = f"Not run: step {job.position} ({job.stage_name}) ended {job.get_state_display().lower()}."
    now = timezone.now()
    for step in later:
        transition(
            step,
            JobState.CANCELLED,
            source="task",
            detail=message,
            error_code="STAGE_NOT_RUN",
            error_message=message[:500],
            finished_at=now,
            ended_at=now if step.slurm_job_id else None,
        )


def relink_after_continuation(session: Any, job: Job) -> None:
    """A TIMEOUT step's continuation is queued: the next step now waits for it (afterok) instead."""
    following = next((s for s in current_steps(job.pipeline) if s.position == (job.position or 0) + 1), None)
    if following is None or following.state != JobState.PENDING or not following.slurm_job_id:
        return
    try:
        session.slurm().relink(following.slurm_job_id, after=job.slurm_job_id)
    except SlurmError as exc:
        note(following, "RELINK_FAILED", source="task", detail=f"{exc.code}: it still waits for the timed-out step")
        stop_after(job)
        return
    note(
        following,
        "RELINKED",
        source="task",
        detail=f"now waits for SLURM job {job.slurm_job_id} (step {job.position}'s continuation)",
    )


def cancel_pipeline_steps(*, pipeline_id: int, acting_user_id: int, task_id: str = "") -> None:
    """The cancel task: one scancel, as the owner, for the run's queued steps."""
    cancel_steps(
        access_pipeline_for_task(acting_user_id=acting_user_id, pipeline_id=pipeline_id),
        acting_user_id=acting_user_id,
        task_id=task_id,
    )


def cancel_steps(pipeline: Pipeline, *, acting_user_id: int, task_id: str = "") -> None:
    """One scancel for the run's queued steps (the sync then follows their states)."""
    queued = [step.pk for step in current_steps(pipeline) if step.state in QUEUED_STATES and step.slurm_job_id]
    if queued:
        cancel_in_slurm(job_ids=queued, acting_user_id=acting_user_id, task_id=task_id)


def request_cancel_pipeline(*, user: User, pipeline_id: int) -> tuple[Pipeline, str]:
    """Cancel the run: steps not yet submitted at once, queued ones by one scancel task. Raises Conflict
    (PIPELINE_ALREADY_ENDED)."""
    with transaction.atomic():
        pipeline = access_pipeline_to_act(user=user, pipeline_id=pipeline_id, for_update=True)
        steps = current_steps(pipeline)
        open_steps = [step for step in steps if step.state not in TERMINAL_STATES]
        if not open_steps:
            raise Conflict("Every step of this run has ended.", code="PIPELINE_ALREADY_ENDED")
        Pipeline.objects.filter(pk=pipeline.pk).update(cancel_requested_at=timezone.now())
        now = timezone.now()
        for step in open_steps:
            if step.state in EDITABLE_STATES:
                transition(step, JobState.CANCELLED, source="user", actor_id=user.pk, finished_at=now)
            else:
                Job.objects.filter(pk=step.pk).update(cancel_requested_at=now)
                note(step, "CANCEL_REQUESTED", source="user", actor_id=user.pk)
        if not any(step.state in QUEUED_STATES for step in open_steps):
            return pipeline, ""
        return pipeline, enqueue_on_commit(
            "jobs.tasks.cancel_pipeline_task", pipeline.pk, user.pk, queue=cluster_queue(pipeline.profile_id)
        )


def resume_pipeline(
    *,
    user: User,
    pipeline_id: int,
    values: dict[str, Any] | None = None,
    stage_values: dict[int, dict[str, Any]] | None = None,
) -> Pipeline:
    """New jobs from the first step that did not complete on, in the same folder, with the values given
    (the templates' versions stay the run's); the first holds the inputs. Raises Conflict
    (PIPELINE_NOT_RESUMABLE, PIPELINE_BUSY), InvalidInput, TemplateError."""
    with transaction.atomic():
        pipeline = access_pipeline_to_act(user=user, pipeline_id=pipeline_id, for_update=True)
        steps = current_steps(pipeline)
        stopped = next((step for step in steps if step.state != JobState.COMPLETED), None)
        if stopped is None or stopped.state not in FAILED_STEP_STATES:
            raise Conflict("Only a run with a failed or cancelled step can resume.", code="PIPELINE_NOT_RESUMABLE")
        if any(step.awaits_cluster for step in steps):
            raise Conflict("Wait until every step's results are back.", code="PIPELINE_BUSY")
        merged_stage = {int(k): v for k, v in pipeline.stage_values.items()}
        for position, overrides in (stage_values or {}).items():
            merged_stage[position] = {**merged_stage.get(position, {}), **overrides}
        request = PipelineRequest(
            protocol_id=pipeline.protocol_id,
            cluster_id=pipeline.profile_id,
            recipe=pipeline.recipe_name,
            title=pipeline.title,
            values={**pipeline.values, **(values or {})},
            stage_values=merged_stage,
            resources=batch_script.Resources(**pipeline.resources),
            continue_on_timeout=pipeline.continue_on_timeout,
        )
        folders = NewJob(pipeline.uuid, pipeline.project_dir, pipeline.scratch_dir)
        pinned = _pinned_versions(pipeline, steps)
        rendered = _render_steps(
            user=user, protocol=pipeline.protocol, request=request, folders=folders, title=pipeline.title, pinned=pinned
        )
        if [step.plan.position for step in rendered] != [step.position for step in steps]:
            raise _protocol_changed(pipeline)
        Pipeline.objects.filter(pk=pipeline.pk).update(
            values=request.values,
            stage_values={str(k): v for k, v in merged_stage.items()},
            cancel_requested_at=None,
        )
        pipeline.refresh_from_db()
        holder = inputs_holder(pipeline)
        detail = f"resumes pipeline {pipeline.pk} from step {stopped.position}"
        jobs = [
            _add_step(pipeline, step, user=user, detail=detail)
            for step in rendered
            if step.plan.position >= stopped.position
        ]
        if holder is not None:
            hand_inputs(holder, jobs[0])
        transition(jobs[0], JobState.UPLOADING, source="user", actor_id=user.pk, detail=detail)
        refresh_readiness(jobs[0], source="user")
    return pipeline


def _protocol_changed(pipeline: Pipeline) -> Conflict:
    return Conflict(
        f"The protocol '{pipeline.protocol.name}' changed since this run was made (its stages or their templates), "
        "so the run cannot go on as it was planned: clone it to run the protocol as it is now.",
        code="PROTOCOL_CHANGED",
    )


def _pinned_versions(pipeline: Pipeline, steps: list[Job]) -> dict[int | None, TemplateVersion]:
    """The run's template version of each stage (by stage id), to resume with. Raises Conflict (PROTOCOL_CHANGED)
    when a stage the run used is gone or now runs another template."""
    stages = {stage.pk: stage for stage in pipeline.protocol.stages.all()}
    first_jobs: dict[int, Job] = {}  # a step's first job was made from its stage (a continuation may not be)
    for job in pipeline.steps.select_related("template_version").order_by("-pk"):
        first_jobs[job.position] = job
    pinned: dict[int | None, TemplateVersion] = {}
    for step in steps:
        first = first_jobs[step.position]
        stage = stages.get(first.protocol_stage_id)
        if stage is None or stage.template_id != first.template_version.template_id:
            raise _protocol_changed(pipeline)
        pinned[stage.pk] = first.template_version
    return pinned


def clone_pipeline(*, user: User, pipeline_id: int) -> Pipeline:
    """A new run like this one (protocol, cluster, recipe, values, resources), rendered with the protocol's
    latest versions; its inputs are uploaded again. Raises NotFound, Conflict, InvalidInput, TemplateError."""
    source = access_pipeline(user=user, pipeline_id=pipeline_id)
    request = PipelineRequest(
        protocol_id=source.protocol_id,
        cluster_id=source.profile_id,
        recipe=source.recipe_name,
        title=f"{source.title[:193]} (copy)",
        values=source.values,
        stage_values={int(k): v for k, v in source.stage_values.items()},
        resources=batch_script.Resources(**source.resources),
        continue_on_timeout=source.continue_on_timeout,
    )
    return create_pipeline(user=user, request=request)
