"""Finding a member's jobs again from their project folders: each job's `job.json` read back.

A member who lost the portal's database (or used another portal) asks for a discovery on one
cluster; a task lists the job documents one level below their project root (each job folder's
`job.json`, and in a pipeline run's folder each step's `<step>.json` beside its `<step>.sbatch`),
reads them 100 per exec and imports the jobs the portal does not know yet. A document is the member's
text: it is imported only if every field passes the rules a new job passes (its values rendered with
its template version, its resources checked on the cluster's partitions, its folders those the layout
gives it below the member's roots, a SLURM id no other job holds); otherwise it is refused with a code,
counted and reported, and nothing of it is written. A refused one is never seen by the status sync.
A step re-creates (or joins, by uuid) its pipeline run, and a sweep point its sweep; a step of a
protocol the member cannot run here is imported as a plain job, and the report says so
(`JOB_JSON_PROTOCOL_UNKNOWN`). One folder's documents are imported oldest first, so that a step's
newest job (a resume, a continuation) is its current one again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from clusters import access as cluster_access
from clusters import selectors as cluster_selectors
from clusters.models import ClusterProfile
from clusters.paths import expand_root, resolve_user_path
from clusters.ssh import RemotePathForbidden
from jobs import access, layout, remote
from jobs.metadata import (
    MAX_JOB_JSON_BYTES,
    DiscoveredJob,
    DiscoveredStep,
    DiscoveredSweepPoint,
    JobDocumentInvalid,
    parse_job_document,
)
from jobs.models import TERMINAL_STATES, Job, JobEvent, JobState, Pipeline, Sweep, SweepPoint
from jobs.services.creation import render_job
from portal.enqueue import enqueue_on_commit
from portal.errors import Conflict, InvalidInput, PortalError
from portal.queues import cluster_queue
from templates_app import access as template_access
from templates_app.batch_script import Resources
from templates_app.models import Protocol, ProtocolStage, TemplateVersion
from templates_app.services import config_path

READS_PER_EXEC = 100
MAX_REPORTED_REFUSALS = 100  # the task's result lists this many refused files (the count has them all)
# without_pipeline: steps imported as plain jobs (their protocol unknown here), counted among the imported too
REPORT_COUNTS = ("found", "imported", "known", "refused", "without_pipeline")


@dataclass(frozen=True)
class ImportResult:
    outcome: str  # "imported" or "known"
    left_out: PortalError | None = None  # what of the document was not imported (its pipeline run), and why


@dataclass
class DiscoveryReport:
    """What a discovery found: counts, and each refused or partly imported file with its code."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REPORT_COUNTS, 0))
    refusals: list[dict[str, str]] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.counts, "refusals": self.refusals, "notes": self.notes}

    def refuse(self, path: str, error: PortalError) -> None:
        self.counts["refused"] += 1
        if len(self.refusals) < MAX_REPORTED_REFUSALS:
            self.refusals.append({"path": path, "code": error.code, "message": error.user_message})

    def record(self, path: str, result: ImportResult) -> None:
        self.counts[result.outcome] += 1
        if result.left_out is not None:
            self.counts["without_pipeline"] += 1
            if len(self.notes) < MAX_REPORTED_REFUSALS:
                self.notes.append({"path": path, "code": result.left_out.code, "message": result.left_out.user_message})


def request_discovery(*, user: User, cluster_id: int) -> str:
    """Enqueue a discovery of the member's jobs on one cluster. Raises NotFound (no credential of theirs)."""
    credential = cluster_access.access_own_credential(user=user, profile_id=cluster_id)
    return enqueue_on_commit(
        "jobs.tasks.discover_jobs_task", user.pk, credential.profile_id, queue=cluster_queue(credential.profile_id)
    )


def discover_jobs(*, user_id: int, profile_id: int, task_id: str = "") -> dict[str, Any]:
    """Re-import the member's jobs from the job documents in their project root; known uuids are skipped.

    Returns the counts (found, imported, known, refused; without_pipeline: imported as plain jobs),
    `refusals` (each refused file's path and code) and `notes` (each file imported without its pipeline run).
    """
    user = User.objects.get(pk=user_id)
    credential = cluster_access.access_own_credential(user=user, profile_id=profile_id)
    session = remote.credential_session(credential, task_id=task_id)
    project_root = session.roots[0]
    listing = session.run(
        remote.find_job_documents_argv(project_root, MAX_JOB_JSON_BYTES),
        max_output_bytes=remote.DOCUMENTS_LISTING_MAX_BYTES,
    )
    paths = remote.job_document_paths(listing.stdout, project_root)
    report = DiscoveryReport()
    report.counts["found"] = len(paths)
    folder: list[tuple[str, str]] = []  # the documents of one job folder (the paths come sorted, folder by folder)
    for start in range(0, len(paths), READS_PER_EXEC):
        chunk = paths[start : start + READS_PER_EXEC]
        results = session.run_sequence(
            remote.read_small_files_argvs(chunk, MAX_JOB_JSON_BYTES),
            max_output_bytes=remote.small_reads_output_bytes(len(chunk), MAX_JOB_JSON_BYTES),
        )
        for path, result in zip(chunk, results, strict=True):
            try:
                text = remote.small_file_text(result, MAX_JOB_JSON_BYTES) or ""
            except InvalidInput:  # REMOTE_FILE_TOO_LARGE: grown past the cap since `find` listed it
                text = ""
            if folder and _folder(folder[0][0]) != _folder(path):
                import_folder_documents(user, credential.profile, folder, report)
                folder = []
            folder.append((path, text))
    import_folder_documents(user, credential.profile, folder, report)
    return report.as_dict()


def _folder(path: str) -> str:
    return path.rpartition("/")[0]


def import_folder_documents(
    user: User, profile: ClusterProfile, documents: list[tuple[str, str]], report: DiscoveryReport
) -> None:
    """One job folder's documents (path, text), counted in `report`, oldest job first: a pipeline step's newest
    job at a position (a TIMEOUT continuation) gets the higher id, which makes it the step's current job again."""
    parsed: list[tuple[str, DiscoveredJob]] = []
    for path, text in documents:
        try:
            parsed.append((path, parse_job_document(text)))
        except PortalError as exc:
            report.refuse(path, exc)
    for path, found in sorted(parsed, key=lambda item: (item[1].created_at, str(item[1].uuid))):
        try:
            report.record(path, import_discovered_job(user, profile, path, found))
        except PortalError as exc:  # this file's refusal, reported; the others are still imported
            report.refuse(path, exc)


def import_job_document(user: User, profile: ClusterProfile, path: str, text: str) -> ImportResult:
    """Import one job document read at `path` (see `import_discovered_job`). Raises JobDocumentInvalid too."""
    return import_discovered_job(user, profile, path, parse_job_document(text))


def import_discovered_job(user: User, profile: ClusterProfile, path: str, found: DiscoveredJob) -> ImportResult:
    """Import one parsed job document read at `path`: "imported" (with what was left out, if anything), or
    "known" (its uuid is here). A step joins its pipeline run (made from the document when the portal has none
    of that uuid), a sweep point its sweep.

    Raises JobDocumentInvalid (JOB_JSON_*), NotFound (TEMPLATE_NOT_FOUND, RECIPE_NOT_FOUND), TemplateError (the
    values' codes), InvalidInput (the resources' codes), Conflict (JOB_JSON_SLURM_ID_TAKEN, JOB_JSON_CONFLICT,
    JOB_JSON_PIPELINE_MISMATCH, JOB_JSON_SWEEP_MISMATCH): nothing written.
    """
    if Job.objects.filter(uuid=found.uuid).exists():
        return ImportResult("known")
    if found.cluster != profile.slug:
        raise JobDocumentInvalid("job.json names another cluster.", code="JOB_JSON_OTHER_CLUSTER")
    _check_folders(found, path, _member_roots(user, profile))
    version = (
        TemplateVersion.objects.select_related("template")
        .filter(template__slug=found.template_slug, number=found.template_version)
        .first()
    )
    if version is None:
        raise JobDocumentInvalid(
            "job.json names a template version this portal lacks.", code="JOB_JSON_TEMPLATE_UNKNOWN"
        )
    template_access.access_template(user=user, template_id=version.template_id)
    recipe = cluster_access.access_launch_recipe(profile=profile, name=found.recipe)
    step = found.pipeline
    config_file = _step_config_path(step, version) if step else config_path(version.workdir)
    config, script, values = render_job(
        job_uuid=found.uuid,
        version=version,
        values=found.values,
        profile=profile,
        recipe=recipe,
        resources=Resources(**found.resources),
        title=found.title,
        scratch_dir=found.scratch_dir,
        config_filename=config_file,
    )
    if found.slurm_job_id and Job.objects.filter(profile=profile, slurm_job_id=found.slurm_job_id).exists():
        raise Conflict("Another job of this cluster holds the SLURM id job.json names.", code="JOB_JSON_SLURM_ID_TAKEN")
    pipeline, protocol = _pipeline_of(user, profile, found, step) if step else (None, None)
    left_out = None
    if step is not None and pipeline is None and protocol is None:
        left_out = JobDocumentInvalid(
            f"Imported without its pipeline run: this portal has no protocol {step.protocol_slug!r} you may run"
            + (" (nor its sweep)." if found.sweep else "."),
            code="JOB_JSON_PROTOCOL_UNKNOWN",
        )
    state = _imported_state(found)
    # the job it continues, if it is the member's and already here (a step's continuation: imported after it)
    parents = access.actable_jobs(user, include_deleted=True).filter(uuid=found.parent_uuid)
    parent = parents.first() if found.parent_uuid else None
    try:
        with transaction.atomic():
            if pipeline is None and protocol is not None and step is not None:
                pipeline = _create_pipeline(user, profile, found, step, protocol)
            job = Job.objects.create(
                uuid=found.uuid,
                owner=user,
                profile=profile,
                template_version=version,
                parent=parent,
                title=found.title,
                values=values,
                resources=found.resources,
                recipe_name=recipe.name,
                config_text=config,
                config_path=config_file,
                batch_script=script,
                project_dir=found.project_dir,
                scratch_dir=found.scratch_dir,
                state=state,
                slurm_job_id=found.slurm_job_id,
                submitted_at=found.submitted_at,
                started_at=found.started_at,
                ended_at=found.ended_at,
                finished_at=timezone.now() if state in TERMINAL_STATES else None,
                **(_step_fields(step, pipeline, version) if step else {}),
            )
            if found.sweep is not None and (pipeline is not None or step is None):
                _join_sweep(user, profile, found.sweep, job=job, pipeline=pipeline)
            JobEvent.objects.create(job=job, kind="IMPORTED", new_state=state, source="task", detail=path[:1000])
    except IntegrityError as exc:  # another discovery imported the same uuid or SLURM id meanwhile
        raise Conflict("Another job took this job's uuid or SLURM id meanwhile.", code="JOB_JSON_CONFLICT") from exc
    return ImportResult("imported", left_out)


def _member_roots(user: User, profile: ClusterProfile) -> tuple[str, str]:
    """(project root, scratch root) of the member on the profile's cluster, as their session has them."""
    username = cluster_selectors.remote_username(user=user, profile=profile)
    return str(expand_root(profile.project_root_pattern, username)), str(
        expand_root(profile.scratch_root_pattern, username)
    )


def _check_folders(found: DiscoveredJob, path: str, roots: tuple[str, str]) -> None:
    """The job's two folders are the layout's (a job's: its template and uuid; a pipeline step's: its run's
    protocol and uuid) below the member's two roots, and the document was read from its project folder:
    `job.json`, or a step's `<step>.json`. Raises JobDocumentInvalid (JOB_JSON_FOLDER_MISMATCH)."""
    step = found.pipeline
    if step is None:
        name, document = layout.folder_name(found.template_slug, found.uuid), layout.METADATA_FILENAME
    else:
        name, document = layout.folder_name(step.protocol_slug, step.pipeline_uuid), step.metadata_name
    try:
        project_dir, scratch_dir = (str(resolve_user_path([root], name)) for root in roots)
    except RemotePathForbidden as exc:
        raise JobDocumentInvalid("job.json names folders outside yours.", code="JOB_JSON_FOLDER_MISMATCH") from exc
    if (found.project_dir, found.scratch_dir, path) != (project_dir, scratch_dir, f"{project_dir}/{document}"):
        raise JobDocumentInvalid(
            "job.json names folders other than its own job folders.", code="JOB_JSON_FOLDER_MISMATCH"
        )


def _step_config_path(step: DiscoveredStep, version: TemplateVersion) -> str:
    """The step's config path, which lies in its template's working folder. Raises JobDocumentInvalid
    (JOB_JSON_FOLDER_MISMATCH)."""
    if PurePosixPath(step.config_path).parent != PurePosixPath(version.workdir.strip("/")):
        raise JobDocumentInvalid(
            "job.json names a config outside its template's working folder.", code="JOB_JSON_FOLDER_MISMATCH"
        )
    return step.config_path


def _pipeline_of(
    user: User, profile: ClusterProfile, found: DiscoveredJob, step: DiscoveredStep
) -> tuple[Pipeline | None, Protocol | None]:
    """(the member's run of that uuid, None), or (None, the protocol to make it of), or (None, None) when the
    member may run no protocol of that slug here. Raises Conflict (JOB_JSON_PIPELINE_MISMATCH): the uuid is
    another member's run, or another folder's, cluster's or protocol's."""
    mine = access.visible_pipelines(user).filter(owner=user, uuid=step.pipeline_uuid).select_related("protocol").first()
    if mine is None and Pipeline.objects.filter(uuid=step.pipeline_uuid).exists():
        raise _pipeline_mismatch()
    if mine is not None:
        if (mine.profile_id, mine.project_dir, mine.scratch_dir, mine.protocol.slug) != (
            profile.pk,
            found.project_dir,
            found.scratch_dir,
            step.protocol_slug,
        ):
            raise _pipeline_mismatch()
        return mine, None
    return None, template_access.visible_protocols(user).filter(slug=step.protocol_slug).first()


def _pipeline_mismatch() -> Conflict:
    return Conflict(
        "job.json names a pipeline run that is not this folder's run of yours.", code="JOB_JSON_PIPELINE_MISMATCH"
    )


def _create_pipeline(
    user: User, profile: ClusterProfile, found: DiscoveredJob, step: DiscoveredStep, protocol: Protocol
) -> Pipeline:
    return Pipeline.objects.create(
        uuid=step.pipeline_uuid,
        owner=user,
        profile=profile,
        protocol=protocol,
        title=step.title,
        values=step.values,
        stage_values=step.stage_values,
        resources=step.resources,
        recipe_name=step.recipe,
        continue_on_timeout=step.continue_on_timeout,
        project_dir=found.project_dir,
        scratch_dir=found.scratch_dir,
    )


def _step_fields(step: DiscoveredStep, pipeline: Pipeline | None, version: TemplateVersion) -> dict[str, Any]:
    """A step's own fields: its script (its config is rendered at its path), and in its run (when it has one here)
    its place and its protocol stage, if the run's protocol still has one there of the same template."""
    if pipeline is None:  # a plain job now, its files still the step's in the run's folder
        return {"script_path": step.script_path}
    stage = (
        ProtocolStage.objects.filter(
            protocol_id=pipeline.protocol_id, position=step.stage_position, template_id=version.template_id
        ).first()
        if step.stage_position is not None
        else None
    )
    return {
        "pipeline": pipeline,
        "position": step.position,
        "protocol_stage": stage,
        "stage_name": step.stage_name,
        "script_path": step.script_path,
        "continue_on_timeout": step.continue_on_timeout,
    }


def _join_sweep(
    user: User, profile: ClusterProfile, part: DiscoveredSweepPoint, *, job: Job, pipeline: Pipeline | None
) -> None:
    """The job (a template sweep's point) or its run (a protocol sweep's) becomes the sweep's point at its index;
    the sweep is made from the document when the portal has none of that uuid. Raises Conflict
    (JOB_JSON_SWEEP_MISMATCH): another member's sweep, another cluster's or kind's, or the index another's."""
    version, protocol = (None, pipeline.protocol) if pipeline is not None else (job.template_version, None)
    sweep = access.visible_sweeps(user).filter(owner=user, uuid=part.sweep_uuid).first()
    if sweep is None and Sweep.objects.filter(uuid=part.sweep_uuid).exists():
        raise _sweep_mismatch()
    if sweep is None:
        sweep = Sweep.objects.create(
            uuid=part.sweep_uuid,
            owner=user,
            profile=profile,
            template_version=version,
            protocol=protocol,
            title=part.title,
            mode=part.mode,
            axes=part.axes,
            max_running=part.max_running,
        )
    elif (sweep.profile_id, sweep.template_version_id, sweep.protocol_id) != (
        profile.pk,
        version.pk if version else None,
        protocol.pk if protocol else None,
    ):
        raise _sweep_mismatch()
    point = SweepPoint.objects.filter(sweep=sweep, index=part.index).first()
    if point is None:
        SweepPoint.objects.create(
            sweep=sweep, index=part.index, values=part.values, job=None if pipeline else job, pipeline=pipeline
        )
    elif pipeline is None or point.pipeline_id != pipeline.pk:
        raise _sweep_mismatch()


def _sweep_mismatch() -> Conflict:
    return Conflict(
        "job.json names a sweep point that is not this job's in a sweep of yours.", code="JOB_JSON_SWEEP_MISMATCH"
    )


def _imported_state(found: DiscoveredJob) -> JobState:
    """The state the import starts from: a job that never reached SLURM is a draft again; one caught between
    its submission and its first status (SUBMITTING with an id) is PENDING, so that the sync asks SLURM."""
    if found.state in TERMINAL_STATES:
        return found.state
    if not found.slurm_job_id:
        return JobState.DRAFT
    return JobState.PENDING if found.state == JobState.SUBMITTING else found.state
