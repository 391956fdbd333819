"""Sweeps: one template or protocol run at many points; each point is a job (template) or a pipeline run (protocol).

Creation plans the points (`jobs.sweep_points`), renders every one (a refusal names its point) and writes
a template sweep's jobs in bulk; a protocol sweep's points are `create_pipeline` runs. The member uploads
the inputs once, to the first point's job (a protocol sweep: its run's upload step). Once that job is
READY, the sweep's turn (`advance_sweep`, the order `sweep-advance:<id>`) copies those files on the
cluster into every point that lacks them (one rsync per point, all in one exec) and registers them there
as uploaded, so every point becomes READY.

Submitting flags the points (`submit_when_ready` on the job each starts from). The gate (`advance_gate`)
starts flagged READY points in index order while fewer than `max_running` points are submitted and not
settled. A round holds the sweep's row lock, so rounds never overlap and each sees every change committed
before it: it runs when the member submits or retries, after every turn, and when a point settles
(`point_settled`, called by finishing once the results are back). Points are submitted by the ordinary
paths: one submit task per job, one chain per pipeline run. Cancel reaches SLURM as one scancel for all
the points; retry makes new jobs of the template points that did not complete (their inputs copied from
the failed job's folder) or resumes the protocol points' runs.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch, prefetch_related_objects
from django.utils import timezone

from accounts.models import User
from clusters import access as cluster_access
from clusters.models import ClusterProfile, LaunchRecipe
from jobs import remote
from jobs.access import access_sweep_to_act
from jobs.models import (
    EDITABLE_STATES,
    QUEUED_STATES,
    TERMINAL_STATES,
    InputFile,
    Job,
    JobEvent,
    JobState,
    Pipeline,
    Sweep,
)
from jobs.models import SweepPoint as Point
from jobs.pipeline_steps import current_steps, pipeline_status
from jobs.services.budget_gate import refuse_over_budget
from jobs.services.creation import NewJob, place_jobs, render_job
from jobs.services.inputs import StagedInput, register_staged_inputs, uploaded_copy
from jobs.services.pipelines import PipelineRequest, access_runnable_protocol, create_pipeline, resume_pipeline
from jobs.services.readiness import input_problems, order_sweep_advance, refresh_readiness, start_submission
from jobs.sweep_points import SEED_RANGE, SEED_VARIABLE, SweepAxis, SweepPlan, plan_sweep, point_label
from jobs.transitions import record_task_failure, transition
from portal.enqueue import enqueue_on_commit
from portal.errors import ClusterUnreachable, Conflict, InvalidInput, PortalError, RemoteCommandError, TemplateError
from portal.queues import cluster_queue
from templates_app import access as template_access
from templates_app import batch_script
from templates_app import selectors as template_selectors
from templates_app.models import Protocol, Template, TemplateVersion
from templates_app.protocol_services import pinned_stages
from templates_app.rendering import VariableSpec
from templates_app.services import config_path
from templates_app.specs import specs_from_json

BULKY_JOB_COLUMNS = ("config_text", "batch_script")
MAX_TURN_ROUNDS = 5  # a turn copies again while it finds points to fill (made meanwhile, e.g. by a retry)
RUN_STATES_NOT_COMPLETED = frozenset({"FAILED", "CANCELLED"})


@dataclasses.dataclass(frozen=True)
class SweepRequest:
    """A sweep over a template (`template_id`) or a protocol (`protocol_id`): exactly one of them."""

    cluster_id: int
    recipe: str
    resources: batch_script.Resources
    mode: str = "grid"
    axes: tuple[SweepAxis, ...] = ()
    values: dict[str, Any] = dataclasses.field(default_factory=dict)  # the base values; a point's override them
    title: str = ""
    template_id: int | None = None
    protocol_id: int | None = None
    stage_values: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)  # protocol: per stage
    replicas: int | None = None
    base_seed: int | None = None
    max_running: int | None = None  # the portal's gate: at most this many points submitted and not settled
    submit: bool = False  # start the points as soon as they are ready (as POST /sweeps/{id}/submit)


# ------------------------------------------------------------------ creation


def create_sweep(*, user: User, request: SweepRequest) -> Sweep:
    """A sweep with every point a DRAFT job or pipeline run; the first point's job takes the uploads.

    Raises NotFound, Conflict (TEMPLATE_RETIRED, PROTOCOL_RETIRED), InvalidInput (SWEEP_* codes, and a point's
    rendering refusal with `details.point`), TemplateError (with `details.point`)."""
    if (request.template_id is None) == (request.protocol_id is None):
        raise InvalidInput("A sweep runs either a template or a protocol: name one.", code="SWEEP_KIND_INVALID")
    if request.max_running is not None and request.max_running < 1:
        raise InvalidInput("Let at least one point run at a time.", code="SWEEP_MAX_RUNNING_INVALID")
    if request.template_id is not None:
        return _create_template_sweep(user, request)
    return _create_protocol_sweep(user, request)


def plan_points(
    specs: list[VariableSpec],
    *,
    mode: str,
    axes: tuple[SweepAxis, ...],
    replicas: int | None = None,
    base_seed: int | None = None,
) -> SweepPlan:
    """The points of a sweep over these variables (a seed drawn within the `seed` variable's range). Raises
    InvalidInput (SWEEP_* codes)."""
    seed = next((spec for spec in specs if spec.name == SEED_VARIABLE), None)
    low = int(seed.minimum) if seed is not None and seed.minimum is not None else SEED_RANGE[0]
    high = int(seed.maximum) if seed is not None and seed.maximum is not None else SEED_RANGE[1]
    return plan_sweep(
        mode=mode,
        axes=axes,
        variables=frozenset(spec.name for spec in specs),
        replicas=replicas,
        base_seed=base_seed,
        seed_range=(low, high),
    )


def plan_request(request: SweepRequest, specs: list[VariableSpec]) -> SweepPlan:
    """`plan_points` of a request. Raises InvalidInput (SWEEP_* codes)."""
    return plan_points(
        specs, mode=request.mode, axes=request.axes, replicas=request.replicas, base_seed=request.base_seed
    )


def point_title(title: str, index: int, values: dict[str, Any]) -> str:
    """A point's job or run title: the sweep's, its index and its values."""
    return f"{title} #{index} ({point_label(values)})"[:200]


def _at_point(error: PortalError, index: int, values: dict[str, Any]) -> PortalError:
    """The same refusal, saying which point: its index and values in the message and in `details`."""
    return type(error)(
        f"Point {index} ({point_label(values)[:200]}): {error.user_message}",
        code=error.code,
        details={**error.details, "point": index, "point_values": values},
    )


@dataclasses.dataclass(frozen=True)
class _Cluster:
    profile: ClusterProfile
    recipe: LaunchRecipe


def _cluster(user: User, request: SweepRequest) -> _Cluster:
    profile = cluster_access.access_profile(user=user, profile_id=request.cluster_id)
    prefetch_related_objects([profile], "partitions")  # read by every point's batch script: once
    return _Cluster(profile, cluster_access.access_launch_recipe(profile=profile, name=request.recipe))


def _point_job(
    *,
    new: NewJob,
    version: TemplateVersion,
    cluster: _Cluster,
    resources: batch_script.Resources,
    title: str,
    **fields: Any,
) -> Job:
    """A template point's DRAFT job (unsaved): its config and batch script rendered. Raises TemplateError,
    InvalidInput."""
    config, script, values = render_job(
        job_uuid=new.uuid,
        version=version,
        values=fields.pop("values"),
        profile=cluster.profile,
        recipe=cluster.recipe,
        resources=resources,
        title=title,
        scratch_dir=new.scratch_dir,
    )
    return Job(
        uuid=new.uuid,
        profile=cluster.profile,
        template_version=version,
        title=title,
        values=values,
        resources=dataclasses.asdict(resources),
        recipe_name=cluster.recipe.name,
        config_text=config,
        config_path=config_path(version.workdir),
        batch_script=script,
        project_dir=new.project_dir,
        scratch_dir=new.scratch_dir,
        **fields,
    )


def _new_sweep(user: User, cluster: _Cluster, request: SweepRequest, plan: SweepPlan, **fields: Any) -> Sweep:
    return Sweep.objects.create(
        owner=user,
        profile=cluster.profile,
        mode=request.mode,
        axes=plan.axes,
        max_running=request.max_running,
        **fields,
    )


def _render_points(points: list[dict[str, Any]], render: Callable[[int, dict[str, Any]], Job]) -> list[Job]:
    """`render` of every point; the first that does not render is refused, naming it. (Each reads its config
    through a Tcl process of its own: ≈ 9 ms a point, CPU-bound, so threads gained little on two cores.)"""
    jobs = []
    for index, values in enumerate(points):
        try:
            jobs.append(render(index, values))
        except (TemplateError, InvalidInput) as exc:
            raise _at_point(exc, index, values) from exc
    return jobs


def _add_jobs(jobs: list[Job], *, actor: User, details: Iterable[str]) -> list[Job]:
    """The jobs and their CREATED events, in bulk (in the caller's transaction)."""
    Job.objects.bulk_create(jobs)
    JobEvent.objects.bulk_create(
        JobEvent(job=job, kind="CREATED", new_state=JobState.DRAFT, source="user", actor=actor, detail=detail[:1000])
        for job, detail in zip(jobs, details, strict=True)
    )
    return jobs


def sweep_template(user: User, template_id: int) -> tuple[Template, TemplateVersion]:
    """The template a sweep runs and its latest version. Raises NotFound, Conflict (TEMPLATE_RETIRED)."""
    template = template_access.access_template(user=user, template_id=template_id)
    if template.is_retired:
        raise Conflict("This template is retired; choose another.", code="TEMPLATE_RETIRED")
    return template, template_selectors.latest_version(template)


def _create_template_sweep(user: User, request: SweepRequest) -> Sweep:
    template, version = sweep_template(user, request.template_id or 0)
    prefetch_related_objects([version], "assets")  # read by every point's rendering: once
    plan = plan_request(request, specs_from_json(version.variables))
    cluster = _cluster(user, request)
    title = (request.title.strip() or template.name)[:200]
    places = place_jobs(owner=user, profile=cluster.profile, slug=template.slug, count=len(plan.points))

    def render(index: int, values: dict[str, Any]) -> Job:
        return _point_job(
            new=places[index],
            version=version,
            cluster=cluster,
            resources=request.resources,
            title=point_title(title, index, values),
            values={**request.values, **values},
            owner=user,
            submit_when_ready=request.submit,
        )

    jobs = _render_points(plan.points, render)
    assets = [
        StagedInput(a.relpath, Path(a.stored_path), a.size_bytes, a.sha256, is_template_asset=True)
        for a in version.assets.all()
    ]
    with transaction.atomic():
        sweep = _new_sweep(user, cluster, request, plan, title=title, template_version=version)
        _add_jobs(jobs, actor=user, details=(f"point {index} of sweep {sweep.pk}" for index in range(len(jobs))))
        Point.objects.bulk_create(
            Point(sweep=sweep, index=index, values=values, job=job)
            for index, (values, job) in enumerate(zip(plan.points, jobs, strict=True))
        )
        if assets:  # the first point's job holds them; the others get them with the member's inputs
            register_staged_inputs(user=user, job=jobs[0], staged=assets)
    return sweep


def sweep_protocol(user: User, protocol_id: int) -> tuple[Protocol, list[VariableSpec]]:
    """The protocol a sweep runs and its stages' variables (what an axis may name). Raises NotFound, Conflict
    (PROTOCOL_RETIRED)."""
    protocol = access_runnable_protocol(user=user, protocol_id=protocol_id)
    return protocol, [spec for pinned in pinned_stages(protocol) for spec in pinned.rule.specs]


def _create_protocol_sweep(user: User, request: SweepRequest) -> Sweep:
    protocol, specs = sweep_protocol(user, request.protocol_id or 0)
    plan = plan_request(request, specs)
    cluster = _cluster(user, request)
    title = (request.title.strip() or protocol.name)[:200]
    with transaction.atomic():
        sweep = _new_sweep(user, cluster, request, plan, title=title, protocol=protocol)
        runs = []
        for index, values in enumerate(plan.points):
            run_request = PipelineRequest(
                protocol_id=protocol.pk,
                cluster_id=cluster.profile.pk,
                recipe=cluster.recipe.name,
                title=point_title(title, index, values),
                values={**request.values, **values},  # shared values: every stage with the variable gets them
                stage_values=request.stage_values,
                resources=request.resources,
            )
            try:
                runs.append(create_pipeline(user=user, request=run_request))
            except (TemplateError, InvalidInput) as exc:
                raise _at_point(exc, index, values) from exc
        Point.objects.bulk_create(
            Point(sweep=sweep, index=index, values=values, pipeline=run)
            for index, (values, run) in enumerate(zip(plan.points, runs, strict=True))
        )
        if request.submit:
            Job.objects.filter(pipeline__in=runs, position=1).update(submit_when_ready=True)
    return sweep


# ------------------------------------------------------------------ the points as the gate sees them


@dataclasses.dataclass
class PointRun:
    """A point and the jobs that run it: its job (template), or its run's current steps (protocol)."""

    point: Point
    steps: list[Job]

    @property
    def start_job(self) -> Job | None:
        """The job the point starts from: it takes the inputs and the flag (a run's first step not yet sent)."""
        if self.point.pipeline_id is None:
            return self.steps[0]
        return next((step for step in self.steps if step.state in EDITABLE_STATES), None)

    @property
    def is_active(self) -> bool:
        """Submitted and not settled: it holds one of the gate's places."""
        return any(step.awaits_cluster for step in self.steps)

    @property
    def is_waiting(self) -> bool:
        """Flagged and READY: the gate starts it when there is room."""
        job = self.start_job
        return job is not None and job.state == JobState.READY and job.submit_when_ready

    @property
    def did_not_complete(self) -> bool:
        """Settled without completing: what a retry takes."""
        if self.is_active or not self.steps:
            return False
        if self.point.pipeline_id is None:
            return self.steps[0].is_settled and self.steps[0].state != JobState.COMPLETED
        cancelled = self.point.pipeline.cancel_requested_at is not None
        return pipeline_status(self.steps, cancel_requested=cancelled).state in RUN_STATES_NOT_COMPLETED

    @property
    def inputs_source(self) -> Job | None:
        """The job of this point whose inputs are all on the cluster (READY or later), if there is one."""
        held = [step for step in self.steps if getattr(step, "has_inputs", False)]
        job = max(held, key=lambda step: step.pk, default=None)
        return job if job is not None and job.state not in (JobState.DRAFT, JobState.UPLOADING) else None


def point_runs(sweep: Sweep) -> list[PointRun]:
    """Every point with its jobs, in index order: two queries whatever the number of points."""
    has_inputs = Exists(InputFile.objects.filter(job=OuterRef("pk")))
    if sweep.protocol_id is None:
        points = (
            Point.objects.filter(sweep=sweep)
            .select_related("job")
            .defer(*(f"job__{column}" for column in BULKY_JOB_COLUMNS))
            .annotate(job_has_inputs=Exists(InputFile.objects.filter(job=OuterRef("job_id"))))
            .order_by("index")
        )
        runs = []
        for point in points:
            point.job.has_inputs = point.job_has_inputs
            runs.append(PointRun(point, [point.job]))
        return runs
    steps = Job.objects.defer(*BULKY_JOB_COLUMNS).annotate(has_inputs=has_inputs)
    points = (
        Point.objects.filter(sweep=sweep)
        .select_related("pipeline__owner", "pipeline__profile")
        .prefetch_related(Prefetch("pipeline__steps", queryset=steps))
        .order_by("index")
    )
    return [PointRun(point, current_steps(point.pipeline, jobs=list(point.pipeline.steps.all()))) for point in points]


def _locked(user: User, sweep_id: int) -> Sweep:
    """The sweep the user may act on, its row locked (in the caller's transaction). Raises NotFound, Forbidden."""
    sweep = access_sweep_to_act(user=user, sweep_id=sweep_id)
    return Sweep.objects.select_for_update().select_related("owner", "profile").get(pk=sweep.pk)


# ------------------------------------------------------------------ the gate


def advance_gate(*, sweep_id: int, actor_id: int | None = None, source: str = "task") -> list[int]:
    """One round of the gate: the flagged READY points started in index order while fewer than `max_running`
    are active. Holds the sweep's row lock: rounds run one at a time. The indexes of the points started."""
    with transaction.atomic():
        sweep = Sweep.objects.select_for_update().filter(pk=sweep_id, deleted_at=None).first()
        if sweep is None or sweep.cancel_requested_at is not None:
            return []
        runs = point_runs(sweep)
        room = len(runs) if sweep.max_running is None else sweep.max_running - sum(run.is_active for run in runs)
        started: list[int] = []
        for run in runs:
            if len(started) >= room:
                break
            if run.is_waiting and _start(run, actor_id=actor_id, source=source):
                started.append(run.point.index)
    return started


def _start(run: PointRun, *, actor_id: int | None, source: str) -> bool:
    """The point's submission (its job's, or its run's chain), its flag cleared; a refusal stays on the job."""
    job = run.start_job
    assert job is not None  # a waiting point has one
    Job.objects.filter(pk=job.pk).update(submit_when_ready=False)
    try:
        with transaction.atomic():  # a refusal half-way leaves none of its writes
            start_submission(job, actor_id=actor_id, source=source)
    except Conflict as exc:
        record_task_failure(job, "SWEEP_START_REFUSED", exc)
        return False
    return True


def point_settled(job: Job) -> None:
    """A job's results are back (finishing): if it runs a sweep's point, the gate's next round."""
    points = Point.objects.filter(job_id=job.pk)
    if job.pipeline_id is not None:
        points = points | Point.objects.filter(pipeline_id=job.pipeline_id)
    sweep_id = points.values_list("sweep_id", flat=True).first()
    if sweep_id is not None:
        advance_gate(sweep_id=sweep_id)


def request_submit_sweep(*, user: User, sweep_id: int) -> tuple[Sweep, str]:
    """Flag every point not yet submitted and start as many as the gate lets in; the id of the sweep's turn
    (which copies the inputs to the points that lack them), "" when every point was already sent.

    Raises NotFound, Forbidden, Conflict (SWEEP_CANCELLED, SWEEP_NOT_SUBMITTABLE, INPUTS_NOT_READY,
    CREDENTIAL_NOT_FOUND), BudgetExceeded (every point's estimate together)."""
    with transaction.atomic():
        sweep = _locked(user, sweep_id)
        if sweep.cancel_requested_at is not None:
            raise Conflict(
                "This sweep was cancelled: retry its points that did not complete instead.", code="SWEEP_CANCELLED"
            )
        runs = point_runs(sweep)
        waiting = [
            run.start_job for run in runs if run.start_job is not None and run.start_job.state in EDITABLE_STATES
        ]
        if not waiting:
            if any(run.is_active for run in runs):
                return sweep, ""
            raise Conflict("Every point of this sweep was already submitted.", code="SWEEP_NOT_SUBMITTABLE")
        if not any(run.inputs_source for run in runs):
            holder = runs[0].start_job
            problems = input_problems(holder) if holder is not None else []
            message = problems[0]["message"] if problems else "The inputs are still being copied to the cluster."
            details = {"problems": problems, "job_id": holder.pk if holder is not None else None}
            raise Conflict(
                f"Upload the sweep's inputs to its first point: {message}", code="INPUTS_NOT_READY", details=details
            )
        if not sweep.owner.cluster_credentials.filter(profile=sweep.profile).exists():
            raise Conflict("Add your credential for this cluster first.", code="CREDENTIAL_NOT_FOUND")
        # Every point still to send, together (each point's start checks its own again and notes a soft one).
        unsent = [step for run in runs for step in run.steps if step.state in EDITABLE_STATES]
        refuse_over_budget(unsent, what="This sweep")
        Job.objects.filter(pk__in=[job.pk for job in waiting if job is not None]).update(submit_when_ready=True)
        advance_gate(sweep_id=sweep.pk, actor_id=user.pk, source="user")
        return sweep, order_sweep_advance(
            sweep.pk, profile_id=sweep.profile_id
        )  # the points still without the inputs get them there


# ------------------------------------------------------------------ the sweep's turn: inputs, then the gate


def advance_sweep(*, sweep_id: int, task_id: str = "") -> None:
    """The order `sweep-advance:<id>`: the inputs copied into the points that lack them, then the gate; again
    while a round found points to fill. Raises ClusterUnreachable (the order is postponed)."""
    for _ in range(MAX_TURN_ROUNDS):
        filled = copy_sweep_inputs(sweep_id=sweep_id, task_id=task_id)
        advance_gate(sweep_id=sweep_id)
        if not filled:
            return


@dataclasses.dataclass(frozen=True)
class _Copy:
    target: Job
    source: Job
    items: list[InputFile]  # the source's inputs the target lacks


def _copies(runs: list[PointRun]) -> list[_Copy]:
    """What to copy where: every point's start job not yet submitted gets the inputs it lacks, from the job it
    was retried from (if that one has inputs) or else the first point whose inputs are all on the cluster."""
    fallback = next((run.inputs_source for run in runs if run.inputs_source is not None), None)
    targets = [
        run.start_job
        for run in runs
        if run.start_job is not None and run.start_job.state in (JobState.DRAFT, JobState.UPLOADING)
    ]
    if not targets:
        return []
    sources = {job.parent_id for job in targets if job.parent_id} | ({fallback.pk} if fallback else set())
    uploaded: dict[int, list[InputFile]] = defaultdict(list)
    for item in InputFile.objects.filter(job_id__in=sources, state=InputFile.State.UPLOADED).select_related("job"):
        uploaded[item.job_id].append(item)
    held: dict[int, set[str]] = defaultdict(set)
    for job_id, name in InputFile.objects.filter(job__in=targets).values_list("job_id", "name"):
        held[job_id].add(name)
    copies = []
    for target in targets:
        source_id = target.parent_id if uploaded.get(target.parent_id or 0) else (fallback.pk if fallback else None)
        items = [item for item in uploaded.get(source_id or 0, []) if item.name not in held[target.pk]]
        if items:
            copies.append(_Copy(target, items[0].job, items))
    return copies


def copy_sweep_inputs(*, sweep_id: int, task_id: str = "") -> int:
    """Copy the sweep's inputs on the cluster into the points that lack them (one rsync per point, the parts of
    one exec), register them as uploaded, and check each point's readiness. How many points got them.

    Raises ClusterUnreachable; any other failure stays on the points (SWEEP_INPUTS_COPY_FAILED)."""
    sweep = Sweep.objects.filter(pk=sweep_id, deleted_at=None).first()
    if sweep is None or sweep.cancel_requested_at is not None:
        return 0
    copies = _copies(point_runs(sweep))
    if not copies:
        return 0
    argvs = [
        remote.copy_inputs_argv(copy.source.project_dir, [item.name for item in copy.items], copy.target.project_dir)
        for copy in copies
    ]
    try:
        session = remote.member_session(copies[0].target, acting_user_id=sweep.owner_id, task_id=task_id)
        sources = {copy.source.project_dir for copy in copies}
        remote.make_dirs(session, *sorted(sources), *(copy.target.project_dir for copy in copies))
        results = [
            result for chunk in remote.sequence_chunks(argvs) for result in session.run_sequence(chunk, timeout_s=1800)
        ]
    except ClusterUnreachable:
        raise
    except PortalError as exc:
        for copy in copies:
            record_task_failure(copy.target, "SWEEP_INPUTS_COPY_FAILED", exc)
        return 0
    copied = []
    for copy, result in zip(copies, results, strict=True):
        if result.exit_code == 0:
            copied.append(copy)
        else:
            failure = RemoteCommandError(
                "Copying the sweep's inputs into this point's folder failed; submit the sweep again to retry.",
                code="SWEEP_INPUTS_COPY_FAILED",
            )
            record_task_failure(copy.target, "SWEEP_INPUTS_COPY_FAILED", failure)
    _register_copies(copied)
    for copy in copied:
        refresh_readiness(Job.objects.get(pk=copy.target.pk))
    return len(copied)


def _register_copies(copied: list[_Copy]) -> None:
    """The copied files become the points' UPLOADED inputs; a DRAFT point moves to UPLOADING."""
    with transaction.atomic():
        open_ids = set(
            Job.objects.select_for_update()
            .filter(pk__in=[copy.target.pk for copy in copied], state__in=[JobState.DRAFT, JobState.UPLOADING])
            .values_list("pk", flat=True)
        )
        kept = [copy for copy in copied if copy.target.pk in open_ids]
        InputFile.objects.bulk_create(
            [
                uploaded_copy(item, job=copy.target, source_dir=copy.source.project_dir)
                for copy in kept
                for item in copy.items
            ],
            ignore_conflicts=True,  # the member uploaded the same name meanwhile: theirs stays
        )
        for copy in kept:
            if copy.target.state == JobState.DRAFT:
                detail = f"{len(copy.items)} inputs copied on the cluster from job {copy.source.pk}'s folder"
                transition(copy.target, JobState.UPLOADING, source="task", expected=JobState.DRAFT, detail=detail)


def sweep_turn_gave_up(*, sweep_id: int, error: PortalError) -> None:
    """After the turn's last try: the points still without their inputs say why."""
    sweep = Sweep.objects.filter(pk=sweep_id).first()
    if sweep is None:
        return
    for copy in _copies(point_runs(sweep)):
        record_task_failure(copy.target, "SWEEP_INPUTS_COPY_FAILED", error)


# ------------------------------------------------------------------ cancel and retry


def request_cancel_sweep(*, user: User, sweep_id: int) -> tuple[Sweep, str]:
    """Cancel every point: those not yet submitted at once, the queued ones by one scancel (one task); the
    gate starts no more. Raises NotFound, Forbidden, Conflict (SWEEP_ALREADY_ENDED)."""
    with transaction.atomic():
        sweep = _locked(user, sweep_id)
        runs = point_runs(sweep)
        open_jobs = [step for run in runs for step in run.steps if step.state not in TERMINAL_STATES]
        if not open_jobs:
            raise Conflict("Every point of this sweep has ended.", code="SWEEP_ALREADY_ENDED")
        now = timezone.now()
        Sweep.objects.filter(pk=sweep.pk).update(cancel_requested_at=now)
        if sweep.protocol_id is not None:
            Pipeline.objects.filter(pk__in=[run.point.pipeline_id for run in runs]).update(cancel_requested_at=now)
        sent = [job for job in open_jobs if job.state not in EDITABLE_STATES]
        for job in open_jobs:
            if job.state in EDITABLE_STATES:
                transition(job, JobState.CANCELLED, source="user", actor_id=user.pk, finished_at=now)
        Job.objects.filter(pk__in=[job.pk for job in sent]).update(cancel_requested_at=now)
        JobEvent.objects.bulk_create(
            JobEvent(
                job_id=job.pk,
                kind="CANCEL_REQUESTED",
                old_state=job.state,
                new_state=job.state,
                source="user",
                actor_id=user.pk,
                detail=f"sweep {sweep.pk} cancelled",
            )
            for job in sent
        )
        queued = [job.pk for job in sent if job.state in QUEUED_STATES]
        task_id = (
            enqueue_on_commit("jobs.tasks.cancel_jobs_task", queued, user.pk, queue=cluster_queue(sweep.profile_id))
            if queued
            else ""
        )
        return sweep, task_id


def retry_failed_points(*, user: User, sweep_id: int) -> tuple[Sweep, str]:
    """The points that ended without completing run again and are flagged for the gate: a template point gets a
    new job (the sweep's template version, the same values; its inputs copied from the failed job's folder),
    a protocol point's run resumes from its failed step. The turn's task id ("" when nothing is to copy).

    Raises NotFound, Forbidden, Conflict (SWEEP_NOTHING_TO_RETRY, CREDENTIAL_NOT_FOUND), TemplateError,
    InvalidInput (the point's values no longer render)."""
    with transaction.atomic():
        sweep = _locked(user, sweep_id)
        failed = [run for run in point_runs(sweep) if run.did_not_complete]
        if not failed:
            raise Conflict(
                "No point of this sweep ended without completing (or its results are still coming back).",
                code="SWEEP_NOTHING_TO_RETRY",
            )
        if not sweep.owner.cluster_credentials.filter(profile=sweep.profile).exists():
            raise Conflict("Add your credential for this cluster first.", code="CREDENTIAL_NOT_FOUND")
        Sweep.objects.filter(pk=sweep.pk).update(cancel_requested_at=None)
        if sweep.protocol_id is None:
            _retry_jobs(sweep, failed, user=user)
        else:
            _resume_runs(failed, user=user)
        advance_gate(sweep_id=sweep.pk, actor_id=user.pk, source="user")
        return sweep, order_sweep_advance(sweep.pk, profile_id=sweep.profile_id) if sweep.protocol_id is None else ""


def _retry_jobs(sweep: Sweep, failed: list[PointRun], *, user: User) -> None:
    """New jobs for the template points, each the failed job's child, flagged; the points now run them."""
    version = sweep.template_version
    assert version is not None  # a template sweep
    prefetch_related_objects([version], "assets")
    prefetch_related_objects([sweep.profile], "partitions")
    olds = [run.steps[0] for run in failed]
    places = place_jobs(owner=sweep.owner, profile=sweep.profile, slug=version.template.slug, count=len(olds))
    recipes: dict[str, LaunchRecipe] = {}
    jobs = []
    for run, old, new in zip(failed, olds, places, strict=True):
        if old.recipe_name not in recipes:
            recipes[old.recipe_name] = cluster_access.access_launch_recipe(profile=sweep.profile, name=old.recipe_name)
        try:
            jobs.append(
                _point_job(
                    new=new,
                    version=version,
                    cluster=_Cluster(sweep.profile, recipes[old.recipe_name]),
                    resources=batch_script.Resources(**old.resources),
                    title=old.title,
                    values=old.values,
                    owner=sweep.owner,
                    parent=old,
                    submit_when_ready=True,
                )
            )
        except (TemplateError, InvalidInput) as exc:
            raise _at_point(exc, run.point.index, run.point.values) from exc
    _add_jobs(jobs, actor=user, details=(f"retry of job {old.pk} (sweep {sweep.pk})" for old in olds))
    for run, job in zip(failed, jobs, strict=True):
        run.point.job = job
    Point.objects.bulk_update([run.point for run in failed], ["job"])


def _resume_runs(failed: list[PointRun], *, user: User) -> None:
    """Each protocol point's run resumed from its failed step, that step flagged."""
    for run in failed:
        pipeline = resume_pipeline(user=user, pipeline_id=run.point.pipeline_id or 0)
        first = next(step for step in current_steps(pipeline) if step.state in EDITABLE_STATES)
        Job.objects.filter(pk=first.pk).update(submit_when_ready=True)
