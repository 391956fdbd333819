"""Writes on jobs: create, receive and copy inputs, submit, cancel, delete, restart, downloads, discovery.

Requests call the `request_*`/`create_*`/`receive_*` services, which check access, change the
database and enqueue a task with `transaction.on_commit`; they never touch a cluster. Tasks call the
others, which run as the job's owner through `jobs.remote.member_session`. The status sync and the
results copy live in `jobs/sync.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from clusters import access as cluster_access
from clusters import selectors as cluster_selectors
from clusters.gateway import MemberSession
from clusters.models import ClusterProfile, LaunchRecipe
from clusters.paths import expand_root, is_inside_roots
from clusters.slurm import SbatchRejected, SlurmError
from jobs import file_store, input_facts, remote
from jobs.access import access_job, visible_jobs
from jobs.metadata import MAX_JOB_JSON_BYTES, JobDocumentInvalid, parse_job_document
from jobs.models import EDITABLE_STATES, QUEUED_STATES, TERMINAL_STATES, InputFile, Job, JobEvent, JobState
from jobs.namd_files import ROLE_CHECKS, STRUCTURE_ROLES, InputFileInvalid
from jobs.transitions import note, transition
from portal.errors import ClusterUnreachable, Conflict, InvalidInput, NotFound, PortalError, RemoteCommandError
from templates_app import access as template_access
from templates_app import batch_script
from templates_app import selectors as template_selectors
from templates_app.models import Template, TemplateVersion
from templates_app.namd_config import FileRead, check_config, extended_system_facts
from templates_app.services import cluster_settings, config_path, launch_spec, render_version
from templates_app.specs import specs_from_json

logger = logging.getLogger(__name__)

CONFIG_FILENAME = "job.namd"
SCRIPT_FILENAME = "job.sbatch"
PROGRESS_WRITE_INTERVAL_S = 1.0
RESTART_KEYWORDS = ("bincoordinates", "binvelocities", "extendedsystem")
RESTART_TEMPLATE_SLUG = "production-restart"
FIRST_STEP_VARIABLE = "first_step"
RUN_STEPS_VARIABLE = "run_steps"
MAX_AUTO_CONTINUATIONS = 10
OUTPUT_NAME_RE = re.compile(r"^\s*outputname\s+(\S+)", re.IGNORECASE | re.MULTILINE)


def _user(user_id: int) -> User:
    return User.objects.get(pk=user_id)


def _enqueue(task: Any, *args: Any, countdown: float = 0) -> str:
    """Send a task once the current transaction commits; returns its id for the 202 reply."""
    task_id = str(uuid.uuid4())
    transaction.on_commit(lambda: task.apply_async(args=args, task_id=task_id, countdown=countdown))
    return task_id


# ------------------------------------------------------------------ create


@dataclasses.dataclass(frozen=True)
class JobRequest:
    template_id: int
    cluster_id: int
    recipe: str
    title: str
    values: dict[str, Any]
    resources: batch_script.Resources
    continue_on_timeout: bool = False


def _dirs(*, profile: ClusterProfile, username: str, slug: str, job_uuid: uuid.UUID) -> tuple[str, str]:
    name = f"{slug}-{job_uuid.hex[:8]}"
    return (
        str(expand_root(profile.project_root_pattern, username) / name),
        str(expand_root(profile.scratch_root_pattern, username) / name),
    )


def _render(
    *, job_uuid: uuid.UUID, version: TemplateVersion, values: dict[str, Any], profile: ClusterProfile,
    recipe: LaunchRecipe, resources: batch_script.Resources, title: str, scratch_dir: str,
) -> tuple[str, str, dict[str, Any]]:  # fmt: skip
    """(config, batch script, values with defaults). Raises TemplateError, InvalidInput (the resource codes)."""
    rendered = render_version(version=version, values=values)
    try:
        script = batch_script.render_batch_script(
            cluster_settings(profile), launch_spec(recipe), resources,
            batch_script.ScriptInputs(job_uuid=job_uuid, job_title=title, scratch_dir=scratch_dir,
                                      config_filename=config_path(version.workdir)),
        )  # fmt: skip
    except batch_script.BatchScriptError as exc:
        raise InvalidInput(
            exc.problems[0].message, code=exc.problems[0].code,
            details={"problems": [{"code": p.code, "message": p.message, "field": "resources"} for p in exc.problems]},
        ) from exc  # fmt: skip
    return rendered.config, script, rendered.values


def create_job(*, user: User, request: JobRequest) -> Job:
    """A DRAFT job with its rendered config and batch script. Raises NotFound, TemplateError, InvalidInput."""
    template = template_access.access_template(user=user, template_id=request.template_id)
    if template.is_retired:
        raise Conflict("This template is retired; choose another.", code="TEMPLATE_RETIRED")
    version = template_selectors.latest_version(template)
    profile = cluster_access.access_profile(user=user, profile_id=request.cluster_id)
    recipe = cluster_access.access_launch_recipe(profile=profile, name=request.recipe)
    job_uuid = uuid.uuid4()
    username = cluster_selectors.remote_username(user=user, profile=profile)
    project_dir, scratch_dir = _dirs(profile=profile, username=username, slug=template.slug, job_uuid=job_uuid)
    title = request.title.strip() or template.name
    config, script, values = _render(
        job_uuid=job_uuid, version=version, values=request.values, profile=profile, recipe=recipe,
        resources=request.resources, title=title, scratch_dir=scratch_dir,
    )  # fmt: skip
    with transaction.atomic():
        job = Job.objects.create(
            uuid=job_uuid, owner=user, profile=profile, template_version=version, title=title, values=values,
            resources=dataclasses.asdict(request.resources), recipe_name=recipe.name, config_text=config,
            config_path=config_path(version.workdir), batch_script=script, project_dir=project_dir,
            scratch_dir=scratch_dir, continue_on_timeout=request.continue_on_timeout,
        )  # fmt: skip
        JobEvent.objects.create(job=job, kind="CREATED", new_state=JobState.DRAFT, source="user", actor=user)
        assets = [StagedInput(a.relpath, Path(a.stored_path), a.size_bytes, a.sha256, is_template_asset=True)
                  for a in version.assets.all()]  # fmt: skip
        if assets:
            register_staged_inputs(user=user, job=job, staged=assets)
    return job


def update_job_values(*, user: User, job_id: int, values: dict[str, Any]) -> Job:
    """New values for a job not yet submitted: its config and batch script rendered again, its inputs' roles
    read from the new config. Raises NotFound, Conflict (JOB_NOT_EDITABLE), TemplateError."""
    with transaction.atomic():
        job = access_job(user=user, job_id=job_id, for_update=True)
        if job.state not in EDITABLE_STATES:
            raise Conflict("Values can change only before the job is submitted.", code="JOB_NOT_EDITABLE")
        recipe = cluster_access.access_launch_recipe(profile=job.profile, name=job.recipe_name)
        config, script, rendered = _render(
            job_uuid=job.uuid, version=job.template_version, values={**job.values, **values}, profile=job.profile,
            recipe=recipe, resources=batch_script.Resources(**job.resources), title=job.title,
            scratch_dir=job.scratch_dir,
        )  # fmt: skip
        Job.objects.filter(pk=job.pk).update(config_text=config, batch_script=script, values=rendered)
        roles = input_roles(config, job.config_path)
        for input_file in job.inputs.all():
            if input_file.role != roles.get(input_file.name, ""):
                InputFile.objects.filter(pk=input_file.pk).update(role=roles.get(input_file.name, ""))
        note(job, "VALUES_CHANGED", source="user", actor_id=user.pk, detail=", ".join(sorted(values))[:1000])
    job.refresh_from_db()
    refresh_readiness(job, source="user")
    return job


def suggested_values(job: Job) -> dict[str, Any]:
    """Values the job's inputs already say (cell, first step) that differ from the job's own."""
    names = {spec.name for spec in specs_from_json(job.template_version.variables)}
    found = input_facts.suggested_values(names, [(f.name, f.role, f.facts) for f in job.inputs.all()])
    return {name: value for name, value in found.items() if job.values.get(name) != value}


def clone_job(*, user: User, job_id: int) -> Job:
    """A new DRAFT with the job's template, values, resources, recipe and cluster, titled "<title> (copy)".

    Rendered with the template's latest version, like any new job. Raises NotFound, Conflict (TEMPLATE_RETIRED),
    TemplateError, InvalidInput (when the template or the cluster changed since).
    """
    source = access_job(user=user, job_id=job_id)
    request = JobRequest(
        template_id=source.template_version.template_id, cluster_id=source.profile_id, recipe=source.recipe_name,
        title=f"{source.title[:193]} (copy)", values=source.values,
        resources=batch_script.Resources(**source.resources), continue_on_timeout=source.continue_on_timeout,
    )  # fmt: skip
    return create_job(user=user, request=request)


# ------------------------------------------------------------------ inputs


def input_reads(config: str, config_path: str = CONFIG_FILENAME) -> list[FileRead]:
    """The files a job's config reads (as NAMD evaluates it), except those it makes on the cluster first."""
    check = check_config(config, config_path=config_path, config_only=True)
    return [read for read in check.files_read if not read.made_on_cluster]


def input_roles(config: str, config_path: str = CONFIG_FILENAME) -> dict[str, str]:
    """File path in the job folder -> the NAMD keyword (lower case) that reads it, from a job's config."""
    return {read.path: read.keyword.lower() for read in input_reads(config, config_path)}


def _check_staged(role: str, path: Any) -> tuple[int | None, str, str]:
    """(atom count, problem code, problem message) of one staged input checked for its role."""
    check = ROLE_CHECKS.get(role)
    if check is None:
        return None, "", ""
    try:
        result = check(path)
    except InputFileInvalid as exc:
        return None, exc.code, str(exc)[:500]
    return (result if isinstance(result, int) else None), "", ""


def receive_input_file(*, user: User, job_id: int, name: str, chunks: Iterable[bytes]) -> InputFile:
    """Store an uploaded input (streamed to disk, checked for its role), then copy it to the cluster in a task.

    Raises NotFound, Conflict (JOB_NOT_EDITABLE), InvalidInput (FILENAME_INVALID, FILENAME_RESERVED, FILE_TOO_LARGE).
    """
    job = access_job(user=user, job_id=job_id)
    if job.state not in EDITABLE_STATES:
        raise Conflict("Inputs can change only before the job is submitted.", code="JOB_NOT_EDITABLE")
    clean = file_store.clean_input_path(name)
    staged = file_store.upload_path(job.uuid, file_store.staged_name(clean))
    size, sha256 = file_store.store_chunks(chunks, staged, max_bytes=job.profile.max_upload_bytes)
    return register_staged_input(user=user, job=job, name=clean, staged=staged, size_bytes=size, sha256=sha256)


@dataclasses.dataclass(frozen=True)
class StagedInput:
    """A complete file on the portal's disk, to become the job's input at `name` (a path in the job folder)."""

    name: str
    path: Path
    size_bytes: int
    sha256: str
    is_template_asset: bool = False  # its copy is the template's, shared: never removed


def register_staged_input(*, user: User, job: Job, name: str, staged: Path, size_bytes: int, sha256: str) -> InputFile:
    """Check a complete staged file (its name already cleaned) for its role, record it, enqueue its copy.

    Shared by the one-shot and the resumable uploads. Raises Conflict (JOB_NOT_EDITABLE; the staged file is removed).
    """
    (input_file,) = register_staged_inputs(user=user, job=job, staged=[StagedInput(name, staged, size_bytes, sha256)])
    return input_file


def register_staged_inputs(*, user: User, job: Job, staged: list[StagedInput]) -> list[InputFile]:
    """Check staged files for their roles, record them and enqueue their copy: one task for a single file,
    one stream for many (an archive's files, a template's assets). Raises Conflict (JOB_NOT_EDITABLE)."""
    from jobs.tasks import copy_input_batch_task, copy_input_file_task

    roles = input_roles(job.config_text, job.config_path)
    checked = {item.name: _check_staged(roles.get(item.name, ""), item.path) for item in staged}
    with transaction.atomic():
        job = access_job(user=user, job_id=job.pk, for_update=True)
        if job.state not in EDITABLE_STATES:
            for item in staged:
                if not item.is_template_asset:
                    item.path.unlink(missing_ok=True)
            raise Conflict("Inputs can change only before the job is submitted.", code="JOB_NOT_EDITABLE")
        replaced = InputFile.objects.filter(job=job, name__in=[item.name for item in staged], is_template_asset=False)
        previous = dict(replaced.values_list("name", "staged_path"))
        registered, to_copy = [], []
        for item in staged:
            atom_count, problem_code, problem_message = checked[item.name]
            state = InputFile.State.INVALID if problem_code else InputFile.State.RECEIVED
            input_file, _ = InputFile.objects.update_or_create(
                job=job, name=item.name,
                defaults={
                    "role": roles.get(item.name, ""), "size_bytes": item.size_bytes, "sha256": item.sha256,
                    "atom_count": atom_count, "state": state, "problem_code": problem_code,
                    "problem_message": problem_message, "bytes_uploaded": 0,
                    "staged_path": "" if problem_code else str(item.path), "copied_from": "", "uploaded_at": None,
                    "is_template_asset": item.is_template_asset, "facts": input_facts.file_facts(item.name, item.path),
                },
            )  # fmt: skip
            registered.append(input_file)
            if problem_code and not item.is_template_asset:
                item.path.unlink(missing_ok=True)
            elif not problem_code:
                to_copy.append(input_file.pk)
        if job.state != JobState.UPLOADING:
            detail = f"input {staged[0].name}" if len(staged) == 1 else f"{len(staged)} inputs"
            transition(job, JobState.UPLOADING, source="user", actor_id=user.pk, detail=detail)
        if len(to_copy) == 1 and len(staged) == 1:
            _enqueue(copy_input_file_task, to_copy[0], user.pk)
        elif to_copy:
            _enqueue(copy_input_batch_task, job.pk, to_copy, user.pk)
    for item in staged:
        old = previous.get(item.name)
        if old and old != str(item.path):
            Path(old).unlink(missing_ok=True)
    return registered


def input_problems(job: Job) -> list[dict[str, str]]:
    """What stands between the job's inputs and submission (empty: ready)."""
    inputs = {input_file.name: input_file for input_file in job.inputs.all()}
    problems = []
    for read in input_reads(job.config_text, job.config_path):
        if read.path not in inputs:
            reason = f"the config reads it ('{read.keyword}', line {read.line})"
            problems.append({"code": "INPUT_MISSING", "file": read.path, "message": f"Upload {read.path}: {reason}."})
    for input_file in inputs.values():
        if input_file.state == InputFile.State.INVALID:
            problems.append({"code": input_file.problem_code, "message": input_file.problem_message,
                             "file": input_file.name})  # fmt: skip
        elif input_file.state == InputFile.State.FAILED:
            problems.append({"code": input_file.problem_code or "COPY_FAILED",
                             "message": input_file.problem_message or "Copying to the cluster failed; upload again.",
                             "file": input_file.name})  # fmt: skip
        elif input_file.state != InputFile.State.UPLOADED:
            problems.append({"code": "INPUT_NOT_ON_CLUSTER", "message": f"{input_file.name} is still being copied.",
                             "file": input_file.name})  # fmt: skip
    counts = {f.role: f for f in inputs.values() if f.atom_count is not None}
    structure = next((counts[role] for role in STRUCTURE_ROLES if role in counts), None)
    for input_file in counts.values():
        if structure is not None and input_file is not structure and input_file.atom_count != structure.atom_count:
            problems.append({
                "code": "ATOM_COUNT_MISMATCH", "file": input_file.name,
                "message": f"{input_file.name} has {input_file.atom_count} atoms but {structure.name} has "
                           f"{structure.atom_count}.",
            })  # fmt: skip
    return problems


def input_warnings(job: Job) -> list[dict[str, Any]]:
    """What the inputs say against the config that does not block it (a restart's step vs firsttimestep)."""
    steps = {f.name: f.facts["step"] for f in job.inputs.all() if isinstance(f.facts.get("step"), int)}
    if not steps:
        return []
    check = check_config(job.config_text, config_path=job.config_path, config_only=True, known_steps=steps)
    return [{"code": p.code, "message": p.message, "line": p.line}
            for p in check.warnings if p.code == "NAMD_FIRST_STEP_MISMATCH"]  # fmt: skip


def _wants_submission(job: Job) -> bool:
    return Job.objects.filter(pk=job.pk, submit_when_ready=True).exists()


def refresh_readiness(job: Job, *, source: str = "task") -> None:
    """UPLOADING -> READY once every input is on the cluster and valid (and back if one is replaced)."""
    problems = input_problems(job)
    if job.state == JobState.UPLOADING and not problems:
        # The flag is read after the move to READY, not from `job`: a member who switched it on meanwhile saw
        # UPLOADING and left the submission to this call. If both submit, the conditional transition lets one in.
        if transition(job, JobState.READY, source=source) and _wants_submission(job):
            with contextlib.suppress(Conflict):
                _start_submission(job, actor_id=None, source=source)
    elif job.state == JobState.READY and problems:
        transition(job, JobState.UPLOADING, source=source, detail=problems[0]["message"])


def copy_input_file(*, input_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Copy a staged input into the job's project dir, with progress. Raises ClusterUnreachable (retry)."""
    input_file = InputFile.objects.filter(pk=input_id).first()
    if input_file is None:
        return
    job = access_job(user=_user(acting_user_id), job_id=input_file.job_id)
    claimed = InputFile.objects.filter(
        pk=input_id, sha256=input_file.sha256, state__in=[InputFile.State.RECEIVED, InputFile.State.UPLOADING]
    ).update(state=InputFile.State.UPLOADING)
    if not claimed or not input_file.staged_path:
        return
    last_write = [0.0]

    def progress(done: int, _total: int) -> None:
        if time.monotonic() - last_write[0] >= PROGRESS_WRITE_INTERVAL_S:
            last_write[0] = time.monotonic()
            InputFile.objects.filter(pk=input_id, sha256=input_file.sha256).update(bytes_uploaded=done)

    try:
        session = remote.member_session(job, task_id=task_id)
        remote.make_dirs(session, *remote.input_dirs(job, [input_file.name]))
        session.upload(input_file.staged_path, f"{job.project_dir}/{input_file.name}", progress=progress,
                       verify_sha256=True)  # fmt: skip
    except ClusterUnreachable:
        InputFile.objects.filter(pk=input_id, sha256=input_file.sha256).update(state=InputFile.State.RECEIVED)
        raise
    except PortalError as exc:
        InputFile.objects.filter(pk=input_id, sha256=input_file.sha256).update(
            state=InputFile.State.FAILED, problem_code=exc.code, problem_message=exc.user_message[:500]
        )
        refresh_readiness(job)
        return
    _mark_copied(input_file)
    refresh_readiness(Job.objects.get(pk=job.pk))


def _mark_copied(input_file: InputFile) -> None:
    """The input is on the cluster: its staged copy goes (unless the template's, which is shared)."""
    copied = InputFile.objects.filter(pk=input_file.pk, sha256=input_file.sha256).update(
        state=InputFile.State.UPLOADED, bytes_uploaded=input_file.size_bytes, uploaded_at=timezone.now(),
        staged_path="",
    )  # fmt: skip
    if copied and not input_file.is_template_asset:
        Path(input_file.staged_path).unlink(missing_ok=True)


def copy_input_batch(*, job_id: int, input_ids: list[int], acting_user_id: int, task_id: str = "") -> None:
    """Copy many staged inputs into the job's project dir as one stream (tar batches of small files; large
    files streamed one by one), each checked by sha256 on the cluster. Raises ClusterUnreachable (retry)."""
    job = access_job(user=_user(acting_user_id), job_id=job_id)
    candidates = list(InputFile.objects.filter(
        job=job, pk__in=input_ids, state__in=[InputFile.State.RECEIVED, InputFile.State.UPLOADING]
    ).exclude(staged_path=""))  # fmt: skip
    InputFile.objects.filter(pk__in=[f.pk for f in candidates]).update(state=InputFile.State.UPLOADING)
    if not candidates:
        return
    try:
        session = remote.member_session(job, task_id=task_id)
        remote.make_dirs(session, *remote.input_dirs(job, [f.name for f in candidates]))
        for batch in remote.tar_batches(candidates):
            session.write_files(job.project_dir, {f.name: Path(f.staged_path).read_bytes() for f in batch},
                                timeout_s=600)  # fmt: skip
        for large in [f for f in candidates if f.size_bytes > remote.TAR_BATCH_BYTES]:
            session.upload(large.staged_path, f"{job.project_dir}/{large.name}", verify_sha256=True)
        mismatched = remote.sha256_mismatches(session, job, candidates)
    except ClusterUnreachable:
        InputFile.objects.filter(pk__in=[f.pk for f in candidates]).update(state=InputFile.State.RECEIVED)
        raise
    except PortalError as exc:
        InputFile.objects.filter(pk__in=[f.pk for f in candidates]).update(
            state=InputFile.State.FAILED, problem_code=exc.code, problem_message=exc.user_message[:500]
        )
        refresh_readiness(job)
        return
    for input_file in candidates:
        if input_file.name in mismatched:
            InputFile.objects.filter(pk=input_file.pk).update(
                state=InputFile.State.FAILED, problem_code="COPY_CORRUPTED",
                problem_message="The copy on the cluster differs from the upload; upload it again.",
            )  # fmt: skip
            continue
        _mark_copied(input_file)
    refresh_readiness(Job.objects.get(pk=job.pk))


# ------------------------------------------------------------------ submit


def _start_submission(job: Job, *, actor_id: int | None, source: str) -> str:
    from jobs.tasks import submit_job_task

    if not transition(job, JobState.SUBMITTING, source=source, actor_id=actor_id, error_code="", error_message=""):
        raise Conflict("The job changed meanwhile; reload it.", code="JOB_STATE_CHANGED")
    return _enqueue(submit_job_task, job.pk, actor_id or job.owner_id)


def request_submit(*, user: User, job_id: int) -> tuple[Job, str]:
    """READY -> SUBMITTING and the submit task's id ("" when already submitted). Raises NotFound, Conflict."""
    with transaction.atomic():
        job = access_job(user=user, job_id=job_id, for_update=True)
        if job.state == JobState.SUBMITTING or job.state in QUEUED_STATES or job.slurm_job_id:
            return job, ""
        if job.state in (JobState.DRAFT, JobState.UPLOADING):
            problems = input_problems(job)
            raise Conflict(
                problems[0]["message"] if problems else "The inputs are still being checked.",
                code="INPUTS_NOT_READY", details={"problems": problems},
            )  # fmt: skip
        if job.state != JobState.READY:
            raise Conflict(f"A {job.get_state_display().lower()} job cannot be submitted.", code="JOB_NOT_SUBMITTABLE")
        remote_credential = job.owner.cluster_credentials.filter(profile=job.profile).exists()
        if not remote_credential:
            raise Conflict("Add your credential for this cluster first.", code="CREDENTIAL_NOT_FOUND")
        return job, _start_submission(job, actor_id=user.pk, source="user")


def set_submit_when_ready(*, user: User, job_id: int, enabled: bool) -> tuple[Job, str]:
    """Submit the job as soon as its inputs are ready (at once if they are); returns the submit task's id or "".

    Raises NotFound, Conflict (JOB_NOT_EDITABLE, and request_submit's codes for a job already ready).
    """
    with transaction.atomic():
        job = access_job(user=user, job_id=job_id, for_update=True)
        if job.state not in EDITABLE_STATES:
            raise Conflict("The job was already submitted.", code="JOB_NOT_EDITABLE")
        Job.objects.filter(pk=job.pk).update(submit_when_ready=enabled)
        job.submit_when_ready = enabled
        if enabled and job.state == JobState.READY:
            return request_submit(user=user, job_id=job.pk)
    return job, ""


def _submission_failed(job: Job, error: PortalError) -> None:
    transition(
        job, JobState.READY, source="task", expected=JobState.SUBMITTING, detail=f"{error.code}: {error.user_message}",
        error_code=error.code, error_message=error.user_message[:500],
    )  # fmt: skip


def submit_job(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Dirs, config, script and inputs on the cluster, then sbatch; never twice for one job.

    A retried task (lost reply, killed worker) first looks the job up by its uuid tag and adopts the id.
    Raises ClusterUnreachable (the task retries); permanent failures put the job back to READY with the code.
    """
    job = access_job(user=_user(acting_user_id), job_id=job_id)
    if job.slurm_job_id or job.state != JobState.SUBMITTING:
        return
    Job.objects.filter(pk=job.pk).update(submit_attempts=F("submit_attempts") + 1)
    attempts = Job.objects.values_list("submit_attempts", flat=True).get(pk=job.pk)
    name = batch_script.job_name(job.uuid, job.title)
    try:
        session = remote.member_session(job, task_id=task_id)
        outputs = check_config(job.config_text, config_path=job.config_path, config_only=True).output_dirs
        remote.make_dirs(session, job.project_dir, job.scratch_dir, *remote.input_dirs(job, [job.config_path]),
                         *(f"{job.scratch_dir}/{folder}" for folder in outputs))  # fmt: skip
        session.write_files(job.project_dir, {job.config_path: job.config_text.encode(),
                                              SCRIPT_FILENAME: job.batch_script.encode()})  # fmt: skip
        names = [*job.inputs.filter(state=InputFile.State.UPLOADED).values_list("name", flat=True), job.config_path]
        session.run(remote.copy_tree_argv(job.project_dir, job.scratch_dir), stdin=remote.file_list(names),
                    check=True)  # fmt: skip
        client = session.slurm()
        found = client.find_by_name(name) if attempts > 1 else []
        slurm_job_id = found[-1] if found else client.submit(f"{job.project_dir}/{SCRIPT_FILENAME}", name)
    except SbatchRejected as exc:
        if exc.error.is_transient:
            raise ClusterUnreachable(exc.error.message, code=exc.error.code) from exc
        _submission_failed(job, InvalidInput(exc.error.message, code=exc.error.code))
        return
    except SlurmError as exc:
        message = "SLURM did not answer as expected; the portal will retry."
        raise ClusterUnreachable(message, code="SLURM_ERROR") from exc
    except ClusterUnreachable:
        raise
    except PortalError as exc:
        _submission_failed(job, exc)
        return
    detail = f"SLURM job {slurm_job_id}" + (" (found by its tag after a retry)" if found else "")
    transition(
        job, JobState.PENDING, source="task", detail=detail, slurm_job_id=slurm_job_id, submitted_at=timezone.now(),
        slurm_state="PENDING",
    )  # fmt: skip
    write_metadata(session, job)
    if Job.objects.filter(pk=job.pk, cancel_requested_at__isnull=False).exists():
        cancel_in_slurm(job_ids=[job.pk], acting_user_id=acting_user_id, task_id=task_id)


def submission_gave_up(*, job_id: int, error: PortalError) -> None:
    """After the last retry: back to READY with the error, so the member can submit again (safe: tag lookup)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is not None:
        _submission_failed(job, error)


def write_metadata(session: MemberSession, job: Job) -> None:
    """Rewrite job.json in the project dir; a failure is logged, never fatal to the action that changed the job."""
    try:
        remote.write_job_json(
            session,
            Job.objects.select_related("owner", "profile", "parent", "template_version__template").get(pk=job.pk),
        )
    except PortalError as exc:
        logger.warning("job_json_write_failed", extra={"job_id": job.pk, "code": exc.code})


# ------------------------------------------------------------------ cancel and delete


def _mark_cancelled(*, user: User, job_id: int) -> tuple[Job, bool]:
    """The database side of a cancel: CANCELLED at once before submission, else the request is noted.

    Returns (job, whether SLURM must be told with scancel). Raises NotFound, Conflict (JOB_ALREADY_ENDED).
    """
    with transaction.atomic():
        job = access_job(user=user, job_id=job_id, for_update=True)
        if job.state in TERMINAL_STATES:
            raise Conflict("The job has already ended.", code="JOB_ALREADY_ENDED")
        if job.state in EDITABLE_STATES:
            transition(job, JobState.CANCELLED, source="user", actor_id=user.pk, finished_at=timezone.now())
            return job, False
        Job.objects.filter(pk=job.pk).update(cancel_requested_at=timezone.now())
        note(job, "CANCEL_REQUESTED", source="user", actor_id=user.pk)
        return job, job.state != JobState.SUBMITTING  # a job being submitted is cancelled right after its sbatch


def _enqueue_scancels(jobs: list[Job], acting_user_id: int) -> list[str]:
    """One cancel task per (owner, cluster): each runs a single scancel for all of that group's jobs."""
    from jobs.tasks import cancel_jobs_task

    groups: dict[tuple[int, int], list[int]] = {}
    for job in jobs:
        groups.setdefault((job.owner_id, job.profile_id), []).append(job.pk)
    return [_enqueue(cancel_jobs_task, job_ids, acting_user_id) for job_ids in groups.values()]


def request_cancel(*, user: User, job_id: int) -> tuple[Job, str]:
    """Cancel: at once before submission, otherwise by scancel (the state follows SLURM). Raises Conflict."""
    job, needs_scancel = _mark_cancelled(user=user, job_id=job_id)
    return job, (_enqueue_scancels([job], user.pk)[0] if needs_scancel else "")


def cancel_in_slurm(*, job_ids: list[int], acting_user_id: int, task_id: str = "") -> None:
    """One scancel as the owner for jobs of one (owner, cluster), then an early sync so their states follow."""
    from jobs.sync import request_group_sync

    jobs = visible_jobs(_user(acting_user_id), include_deleted=True).filter(pk__in=job_ids, state__in=QUEUED_STATES)
    queued = list(jobs.exclude(slurm_job_id="").select_related("owner", "profile").order_by("pk"))
    if not queued:
        return
    if len({(job.owner_id, job.profile_id) for job in queued}) > 1:
        raise ValueError("cancel_in_slurm takes the jobs of one owner on one cluster")
    try:
        remote.member_session(queued[0], task_id=task_id).slurm().cancel(*(job.slurm_job_id for job in queued))
    except SlurmError as exc:
        raise RemoteCommandError("SLURM refused to cancel the job.", code="SCANCEL_FAILED") from exc
    request_group_sync(owner_id=queued[0].owner_id, profile_id=queued[0].profile_id, countdown=2)


def request_delete(*, user: User, job_id: int) -> str:
    """Soft-delete the job now; a task cancels it if active and removes its remote dirs. Raises NotFound."""
    from jobs.tasks import delete_job_task

    with transaction.atomic():
        job = access_job(user=user, job_id=job_id, for_update=True)
        Job.objects.filter(pk=job.pk).update(deleted_at=timezone.now())
        note(job, "DELETED", source="user", actor_id=user.pk)
        return _enqueue(delete_job_task, job.pk, user.pk)


MAX_BULK_JOBS = 200
BULK_ACTIONS = ("cancel", "delete")


@dataclasses.dataclass(frozen=True)
class BulkRefusal:
    job_id: int
    code: str
    message: str


@dataclasses.dataclass(frozen=True)
class BulkResult:
    action: str
    done: tuple[int, ...]
    refused: tuple[BulkRefusal, ...]


def bulk_action(*, user: User, job_ids: Iterable[int], action: str) -> BulkResult:
    """Cancel or delete each job on its own: a refusal (with its code) never stops the rest; a job `user` may not
    see is refused as JOB_NOT_FOUND. The cancels reach SLURM as one scancel per (owner, cluster), not one per
    job. Raises InvalidInput (BULK_*)."""
    unique_ids = list(dict.fromkeys(job_ids))
    if action not in BULK_ACTIONS:
        raise InvalidInput("Choose to cancel or to delete the selected jobs.", code="BULK_ACTION_UNKNOWN")
    if not unique_ids:
        raise InvalidInput("Select at least one job first.", code="BULK_NOTHING_SELECTED")
    if len(unique_ids) > MAX_BULK_JOBS:
        raise InvalidInput(f"Select at most {MAX_BULK_JOBS} jobs at a time.", code="BULK_TOO_MANY_JOBS")
    done, refused, to_scancel = [], [], []
    for job_id in unique_ids:
        try:
            if action == "cancel":
                job, needs_scancel = _mark_cancelled(user=user, job_id=job_id)
                if needs_scancel:
                    to_scancel.append(job)
            else:
                request_delete(user=user, job_id=job_id)
        except PortalError as exc:
            refused.append(BulkRefusal(job_id=job_id, code=exc.code, message=exc.user_message))
        else:
            done.append(job_id)
    _enqueue_scancels(to_scancel, user.pk)
    return BulkResult(action=action, done=tuple(done), refused=tuple(refused))


def delete_job_files(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Cancel if active, then `rm -rf` the job's two dirs, each checked to lie strictly inside a root."""
    job = access_job(user=_user(acting_user_id), job_id=job_id, include_deleted=True)
    file_store.remove_job_files(job.uuid)
    if job.state in QUEUED_STATES:
        cancel_in_slurm(job_ids=[job.pk], acting_user_id=acting_user_id, task_id=task_id)
    if job.state in EDITABLE_STATES and not job.inputs.filter(state=InputFile.State.UPLOADED).exists():
        return
    session = remote.member_session(job, task_id=task_id)
    roots = [PurePosixPath(root) for root in session.roots]
    doomed = []
    for directory in (job.project_dir, job.scratch_dir):
        resolved = PurePosixPath(session.confined(directory))
        if resolved in roots or not is_inside_roots(roots, resolved):
            message = "A job folder is not inside your roots; nothing was removed."
            raise RemoteCommandError(message, code="PATH_FORBIDDEN")
        doomed.append(str(resolved))
    session.run(["rm", "-rf", "--", *doomed], check=True, timeout_s=300)
    note(job, "FILES_REMOVED", source="task", detail=" ".join(doomed))


# ------------------------------------------------------------------ restart / continue


def _restart_version(parent: Job) -> TemplateVersion:
    """The parent's own template if it can restart (reads the three restart files and has first_step), else
    the latest production-restart. Raises Conflict (RESTART_TEMPLATE_MISSING)."""
    specs = specs_from_json(parent.template_version.variables)
    keywords = {spec.namd_keyword.lower() for spec in specs}
    if set(RESTART_KEYWORDS) <= keywords and any(spec.name == FIRST_STEP_VARIABLE for spec in specs):
        return parent.template_version
    template = Template.objects.filter(slug=RESTART_TEMPLATE_SLUG).first()
    if template is None or not template.versions.exists():
        raise Conflict("No template can continue this job.", code="RESTART_TEMPLATE_MISSING")
    return template_selectors.latest_version(template)


def request_restart(
    *, user: User, job_id: int, values: dict[str, Any] | None = None, title: str = "", submit: bool = True,
    source: str = "user",
) -> tuple[Job, str]:  # fmt: skip
    """A new job continuing `job_id` from its .coor/.vel/.xsc at its last step; a task copies the files.

    Raises NotFound, Conflict (JOB_NOT_RESTARTABLE, RESTART_TEMPLATE_MISSING).
    """
    from jobs.tasks import prepare_restart_task

    parent = access_job(user=user, job_id=job_id)
    if parent.state not in TERMINAL_STATES or parent.finished_at is None or not parent.slurm_job_id:
        raise Conflict("Only a job that ran and whose results are back can be continued.", code="JOB_NOT_RESTARTABLE")
    version = _restart_version(parent)
    job_uuid = uuid.uuid4()
    profile = parent.profile
    username = cluster_selectors.remote_username(user=parent.owner, profile=profile)
    slug = version.template.slug
    project_dir, scratch_dir = _dirs(profile=profile, username=username, slug=slug, job_uuid=job_uuid)
    names = {spec.name for spec in specs_from_json(version.variables)}
    carried = {name: value for name, value in parent.values.items() if name in names}
    with transaction.atomic():
        job = Job.objects.create(
            uuid=job_uuid, owner=parent.owner, profile=profile, template_version=version, parent=parent,
            title=(title.strip() or f"{parent.title} (continued)")[:200], values={**carried, **(values or {})},
            resources=parent.resources, recipe_name=parent.recipe_name, project_dir=project_dir,
            scratch_dir=scratch_dir, continue_on_timeout=parent.continue_on_timeout, submit_when_ready=submit,
            config_path=config_path(version.workdir),
        )  # fmt: skip
        JobEvent.objects.create(job=job, kind="CREATED", new_state=JobState.DRAFT, source=source, actor=user,
                                detail=f"continues job {parent.pk} (SLURM {parent.slurm_job_id})")  # fmt: skip
        return job, _enqueue(prepare_restart_task, job.pk, user.pk)


def _remaining_steps(parent: Job, job: Job, step: int) -> dict[str, int]:
    """For a timed-out parent, the steps it had left (unless the member chose run_steps): a continuation
    finishes what was asked instead of starting the whole run again."""
    from jobs.models import JobProgress
    from jobs.namd_log import LogProgress

    if parent.state != JobState.TIMEOUT or job.values.get(RUN_STEPS_VARIABLE) != parent.values.get(RUN_STEPS_VARIABLE):
        return {}
    state = JobProgress.objects.filter(job=parent).values_list("log_state", flat=True).first()
    log = LogProgress.from_state(state) if state else None
    if log is None or not log.total_steps:
        return {}
    remaining = (log.first_step or 0) + log.total_steps - step
    return {RUN_STEPS_VARIABLE: remaining} if remaining > 0 else {}


def prepare_restart(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Copy the parent's inputs and restart files into the new job's project dir, render, and make it READY.

    Raises ClusterUnreachable (retry); other failures leave the job a DRAFT with the error code.
    """
    job = access_job(user=_user(acting_user_id), job_id=job_id)
    parent = job.parent
    if job.state != JobState.DRAFT or parent is None or job.config_text:
        return
    match = OUTPUT_NAME_RE.search(parent.config_text)
    out = match.group(1) if match else "out"
    try:
        session = remote.member_session(job, task_id=task_id)
        final, restart = session.run_sequence([
            ["cat", "--", f"{parent.project_dir}/{out}.xsc"], ["cat", "--", f"{parent.project_dir}/{out}.restart.xsc"],
        ])  # fmt: skip
        prefix = f"{out}." if final.exit_code == 0 and parent.state == JobState.COMPLETED else f"{out}.restart."
        xsc = final if prefix == f"{out}." else restart
        step = extended_system_facts(xsc.stdout).get("step") if xsc.exit_code == 0 else None
        if step is None:
            message = "The parent job left no restart files (.xsc) to continue from."
            raise Conflict(message, code="RESTART_FILES_MISSING")
        tag = f"restart-{parent.uuid.hex[:8]}"
        restart_names = {"restart_coordinates": f"{tag}.coor", "restart_velocities": f"{tag}.vel",
                         "restart_cell": f"{tag}.xsc"}  # fmt: skip
        values = {**job.values, **restart_names, FIRST_STEP_VARIABLE: step, **_remaining_steps(parent, job, step)}
        specs = specs_from_json(job.template_version.variables)
        by_keyword = {spec.namd_keyword.lower(): spec.name for spec in specs if spec.namd_keyword}
        values.update(
            {
                by_keyword[k]: restart_names[v]
                for k, v in zip(
                    RESTART_KEYWORDS, ("restart_coordinates", "restart_velocities", "restart_cell"), strict=True
                )
            }
        )
        recipe = cluster_access.access_launch_recipe(profile=job.profile, name=job.recipe_name)
        resources = batch_script.Resources(**job.resources)
        config, script, values = _render(
            job_uuid=job.uuid, version=job.template_version, values=values, profile=job.profile, recipe=recipe,
            resources=resources, title=job.title, scratch_dir=job.scratch_dir,
        )  # fmt: skip
        wanted = input_roles(config, job.config_path)
        copies = {}  # new name -> parent's file
        for parent_input in parent.inputs.filter(state=InputFile.State.UPLOADED):
            if parent_input.name in wanted and parent_input.role not in RESTART_KEYWORDS:
                copies[parent_input.name] = f"{parent.project_dir}/{parent_input.name}"
        for suffix in ("coor", "vel", "xsc"):
            copies[f"{tag}.{suffix}"] = f"{parent.project_dir}/{prefix}{suffix}"
        remote.make_dirs(session, job.project_dir)
        results = session.run_sequence(
            [["cp", "-p", "--", source, f"{job.project_dir}/{name}"] for name, source in copies.items()]
            + [["od", "-A", "n", "-t", "d4", "-N", "4", "--", f"{job.project_dir}/{tag}.{s}"] for s in ("coor", "vel")]
            + [["stat", "-c", "%s", "--", f"{job.project_dir}/{name}"] for name in copies]
        )
    except ClusterUnreachable:
        raise
    except PortalError as exc:
        record_task_failure(job, "RESTART_FAILED", exc)
        return
    failed = [name for name, result in zip(copies, results, strict=False) if result.exit_code != 0]
    if failed:
        Job.objects.filter(pk=job.pk).update(error_code="RESTART_COPY_FAILED",
                                             error_message=f"Could not copy {', '.join(failed)}.")  # fmt: skip
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
            role = wanted.get(name, "")
            count = parent_inputs[name].atom_count if name in parent_inputs else None
            if name.endswith((".coor", ".vel")) and name.startswith(tag):
                count = atom_counts[0 if name.endswith(".coor") else 1]
            InputFile.objects.create(
                job=job, name=name, role=role, size_bytes=size, atom_count=count, state=InputFile.State.UPLOADED,
                bytes_uploaded=size, copied_from=source, uploaded_at=timezone.now(),
                sha256=parent_inputs[name].sha256 if name in parent_inputs else "",
            )  # fmt: skip
        transition(job, JobState.UPLOADING, source="task", detail=f"continues from step {step}")
        refresh_readiness(job)


def record_task_failure(job: Job, kind: str, error: PortalError) -> None:
    """A task's permanent failure on a draft: its code and sentence on the job, and in its timeline."""
    Job.objects.filter(pk=job.pk).update(error_code=error.code, error_message=error.user_message[:500])
    note(job, kind, source="task", detail=f"{error.code}: {error.user_message}")


def continue_after_timeout(job: Job) -> None:
    """The automatic continuation of a job SLURM timed out, if asked for and the chain is not too long."""
    depth, ancestor = 0, job
    while ancestor.parent_id is not None and depth <= MAX_AUTO_CONTINUATIONS:
        ancestor, depth = ancestor.parent, depth + 1
    if depth >= MAX_AUTO_CONTINUATIONS:
        note(job, "AUTO_CONTINUE_STOPPED", source="task", detail=f"{MAX_AUTO_CONTINUATIONS} continuations reached")
        return
    child, _ = request_restart(user=job.owner, job_id=job.pk, submit=True, source="task")
    note(job, "CONTINUED", source="task", detail=f"continued as job {child.pk}")


# ------------------------------------------------------------------ files and downloads


def request_log_fetch(*, job: Job, user: User) -> str:
    from jobs.tasks import fetch_logs_task

    return _enqueue(fetch_logs_task, job.pk, user.pk) if job.slurm_job_id else ""


def request_file_listing(*, user: User, job_id: int) -> str:
    from jobs.tasks import list_job_files_task

    job = access_job(user=user, job_id=job_id)
    return _enqueue(list_job_files_task, job.pk, user.pk)


def list_job_files(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """List the project dir into the job's progress record (the API serves it without SSH)."""
    from jobs.models import JobProgress

    job = access_job(user=_user(acting_user_id), job_id=job_id)
    session = remote.member_session(job, task_id=task_id)
    result = session.run(remote.list_dir_argv(job.project_dir))
    entries = [entry.as_json() for entry in remote.parse_listing(result.stdout)] if result.exit_code == 0 else []
    JobProgress.objects.update_or_create(job=job, defaults={"project_files": entries,
                                                            "files_listed_at": timezone.now()})  # fmt: skip


def clean_relpath(relpath: str) -> str:
    """A path below the job's project dir: relative, no '..', no control characters. Raises InvalidInput."""
    parts = [part for part in relpath.split("/") if part not in ("", ".")]
    if (not parts or relpath.startswith("/") or any(part == ".." or part.startswith("-") for part in parts)
            or any(ord(char) < 32 for char in relpath) or len(relpath) > 400):  # fmt: skip
        raise InvalidInput("Give a path inside the job's folder, e.g. 'out.coor'.", code="PATH_INVALID")
    return "/".join(parts)


def request_download(*, user: User, job_id: int, relpath: str) -> tuple[Any, str]:
    """Stage a project-dir file on the portal so it can be streamed; returns (download, task id)."""
    from jobs.models import StagedDownload
    from jobs.tasks import fetch_download_task

    job = access_job(user=user, job_id=job_id)
    path = clean_relpath(relpath)
    with transaction.atomic():
        download = StagedDownload.objects.create(job=job, relpath=path, requested_by=user)
        return download, _enqueue(fetch_download_task, download.pk, user.pk)


def fetch_download(*, download_id: int, acting_user_id: int, task_id: str = "") -> None:
    from jobs.models import StagedDownload

    download = StagedDownload.objects.filter(pk=download_id, state=StagedDownload.State.FETCHING).first()
    if download is None:
        return
    job = access_job(user=_user(acting_user_id), job_id=download.job_id)
    local = file_store.download_path(job.uuid, download.pk, download.relpath.rsplit("/", 1)[-1])
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = remote.member_session(job, task_id=task_id).download(
            f"{job.project_dir}/{download.relpath}", str(local)
        )
    except ClusterUnreachable:
        raise
    except PortalError as exc:
        StagedDownload.objects.filter(pk=download.pk).update(
            state=StagedDownload.State.FAILED, error_code=exc.code, error_message=exc.user_message[:500]
        )
        return
    StagedDownload.objects.filter(pk=download.pk).update(
        state=StagedDownload.State.READY, size_bytes=result.size_bytes, local_path=str(local)
    )


def access_download(*, user: User, job_id: int, download_id: int) -> Any:
    """A staged download of a job the user may access. Raises NotFound (DOWNLOAD_NOT_FOUND)."""
    job = access_job(user=user, job_id=job_id)
    download = job.downloads.filter(pk=download_id).first()
    if download is None:
        raise NotFound("No such download.", code="DOWNLOAD_NOT_FOUND")
    return download


# ------------------------------------------------------------------ discovery


def request_discovery(*, user: User, cluster_id: int) -> str:
    from jobs.tasks import discover_jobs_task

    credential = cluster_access.access_own_credential(user=user, profile_id=cluster_id)
    return _enqueue(discover_jobs_task, user.pk, credential.profile_id)


def discover_jobs(*, user_id: int, profile_id: int, task_id: str = "") -> dict[str, int]:
    """Re-import the member's jobs from the job.json files in their project root; known uuids are skipped."""
    user = _user(user_id)
    credential = cluster_access.access_own_credential(user=user, profile_id=profile_id)
    session = MemberSession(credential, task_id=task_id)
    project_root = session.roots[0]
    listing = session.run(["find", project_root, "-mindepth", "2", "-maxdepth", "2", "-name", "job.json",
                           "-type", "f", "-size", f"-{MAX_JOB_JSON_BYTES // 1024}k"])  # fmt: skip
    paths = [line for line in listing.stdout.splitlines() if line.startswith(project_root + "/")]
    counts = {"found": len(paths), "imported": 0, "known": 0, "unreadable": 0}
    for start in range(0, len(paths), 100):
        chunk = paths[start : start + 100]
        for path, result in zip(chunk, session.run_sequence([["cat", "--", path] for path in chunk]), strict=True):
            text = result.stdout if result.exit_code == 0 else ""
            outcome = _import_job_document(user, credential.profile, path, text)
            counts[outcome] += 1
    return counts


def _import_job_document(user: User, profile: ClusterProfile, path: str, text: str) -> str:
    try:
        found = parse_job_document(text)
    except JobDocumentInvalid:
        return "unreadable"
    project_dir = path.rsplit("/", 1)[0]
    if Job.objects.filter(uuid=found.uuid).exists():
        return "known"
    version = TemplateVersion.objects.filter(template__slug=found.template_slug, number=found.template_version).first()
    if version is None or found.cluster != profile.slug or found.project_dir != project_dir:
        return "unreadable"
    state = found.state if found.state in TERMINAL_STATES or found.slurm_job_id else JobState.DRAFT
    with transaction.atomic():
        job = Job.objects.create(
            uuid=found.uuid, owner=user, profile=profile, template_version=version, title=found.title,
            values=found.values, resources=found.resources, recipe_name=found.recipe, project_dir=found.project_dir,
            scratch_dir=found.scratch_dir, state=state, slurm_job_id=found.slurm_job_id,
            submitted_at=found.submitted_at, started_at=found.started_at, ended_at=found.ended_at,
            finished_at=timezone.now() if state in TERMINAL_STATES else None,
        )  # fmt: skip
        JobEvent.objects.create(job=job, kind="IMPORTED", new_state=state, source="task", detail=path[:1000])
    return "imported"
