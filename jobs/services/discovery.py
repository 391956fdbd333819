"""Finding a member's jobs again from their project folders: each job's `job.json` read back.

A member who lost the portal's database (or used another portal) asks for a discovery on one
cluster; a task lists the job.json files one level below their project root, reads them 100 per
exec and imports the jobs the portal does not know yet. A document is the member's text: it is imported
only if every field passes the rules a new job passes (its values rendered with its template version, its
resources checked on the cluster's partitions, its folders those the layout gives it below the member's
roots, a SLURM id no other job holds); otherwise it is refused with a code, counted and reported, and
nothing of it is written. A refused one is never seen by the status sync.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from clusters import access as cluster_access
from clusters import selectors as cluster_selectors
from clusters.models import ClusterProfile
from clusters.paths import expand_root, resolve_user_path
from clusters.ssh import RemotePathForbidden
from jobs import layout, remote
from jobs.metadata import MAX_JOB_JSON_BYTES, DiscoveredJob, JobDocumentInvalid, parse_job_document
from jobs.models import TERMINAL_STATES, Job, JobEvent, JobState
from jobs.services.creation import render_job
from portal.enqueue import enqueue_on_commit
from portal.errors import Conflict, InvalidInput, PortalError
from templates_app import access as template_access
from templates_app.batch_script import Resources
from templates_app.models import TemplateVersion
from templates_app.services import config_path

READS_PER_EXEC = 100
MAX_REPORTED_REFUSALS = 100  # the task's result lists this many refused files (the count has them all)


def request_discovery(*, user: User, cluster_id: int) -> str:
    """Enqueue a discovery of the member's jobs on one cluster. Raises NotFound (no credential of theirs)."""
    credential = cluster_access.access_own_credential(user=user, profile_id=cluster_id)
    return enqueue_on_commit("jobs.tasks.discover_jobs_task", user.pk, credential.profile_id)


def discover_jobs(*, user_id: int, profile_id: int, task_id: str = "") -> dict[str, Any]:
    """Re-import the member's jobs from the job.json files in their project root; known uuids are skipped.

    Returns the counts (found, imported, known, refused) and `refusals`: each refused file's path and code.
    """
    user = User.objects.get(pk=user_id)
    credential = cluster_access.access_own_credential(user=user, profile_id=profile_id)
    session = remote.credential_session(credential, task_id=task_id)
    project_root = session.roots[0]
    listing = session.run(remote.find_job_documents_argv(project_root, MAX_JOB_JSON_BYTES))
    paths = [line for line in listing.stdout.splitlines() if line.startswith(project_root + "/")]
    counts = {"found": len(paths), "imported": 0, "known": 0, "refused": 0}
    refusals: list[dict[str, str]] = []
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
            try:
                counts[import_job_document(user, credential.profile, path, text)] += 1
            except PortalError as exc:  # this file's refusal, reported; the others are still read
                counts["refused"] += 1
                if len(refusals) < MAX_REPORTED_REFUSALS:
                    refusals.append({"path": path, "code": exc.code, "message": exc.user_message})
    return {**counts, "refusals": refusals}


def import_job_document(user: User, profile: ClusterProfile, path: str, text: str) -> str:
    """Import one job.json read at `path`: "imported", or "known" (its uuid is here).

    Raises JobDocumentInvalid (JOB_JSON_*), NotFound (TEMPLATE_NOT_FOUND, RECIPE_NOT_FOUND), TemplateError (the
    values' codes), InvalidInput (the resources' codes), Conflict (JOB_JSON_SLURM_ID_TAKEN): nothing written.
    """
    found = parse_job_document(text)
    if Job.objects.filter(uuid=found.uuid).exists():
        return "known"
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
    config, script, values = render_job(
        job_uuid=found.uuid,
        version=version,
        values=found.values,
        profile=profile,
        recipe=recipe,
        resources=Resources(**found.resources),
        title=found.title,
        scratch_dir=found.scratch_dir,
    )
    if found.slurm_job_id and Job.objects.filter(profile=profile, slurm_job_id=found.slurm_job_id).exists():
        raise Conflict("Another job of this cluster holds the SLURM id job.json names.", code="JOB_JSON_SLURM_ID_TAKEN")
    state = _imported_state(found)
    try:
        with transaction.atomic():
            job = Job.objects.create(
                uuid=found.uuid,
                owner=user,
                profile=profile,
                template_version=version,
                title=found.title,
                values=values,
                resources=found.resources,
                recipe_name=recipe.name,
                config_text=config,
                config_path=config_path(version.workdir),
                batch_script=script,
                project_dir=found.project_dir,
                scratch_dir=found.scratch_dir,
                state=state,
                slurm_job_id=found.slurm_job_id,
                submitted_at=found.submitted_at,
                started_at=found.started_at,
                ended_at=found.ended_at,
                finished_at=timezone.now() if state in TERMINAL_STATES else None,
            )
            JobEvent.objects.create(job=job, kind="IMPORTED", new_state=state, source="task", detail=path[:1000])
    except IntegrityError as exc:  # another discovery imported the same uuid or SLURM id meanwhile
        raise Conflict("Another job took this job's uuid or SLURM id meanwhile.", code="JOB_JSON_CONFLICT") from exc
    return "imported"


def _member_roots(user: User, profile: ClusterProfile) -> tuple[str, str]:
    """(project root, scratch root) of the member on the profile's cluster, as their session has them."""
    username = cluster_selectors.remote_username(user=user, profile=profile)
    return str(expand_root(profile.project_root_pattern, username)), str(
        expand_root(profile.scratch_root_pattern, username)
    )


def _check_folders(found: DiscoveredJob, path: str, roots: tuple[str, str]) -> None:
    """The job's two folders are the layout's for its template and uuid, below the member's two roots, and
    job.json was read from its project folder. Raises JobDocumentInvalid (JOB_JSON_FOLDER_MISMATCH)."""
    name = layout.folder_name(found.template_slug, found.uuid)
    try:
        project_dir, scratch_dir = (str(resolve_user_path([root], name)) for root in roots)
    except RemotePathForbidden as exc:
        raise JobDocumentInvalid("job.json names folders outside yours.", code="JOB_JSON_FOLDER_MISMATCH") from exc
    if (found.project_dir, found.scratch_dir, path) != (
        project_dir,
        scratch_dir,
        f"{project_dir}/{layout.METADATA_FILENAME}",
    ):
        raise JobDocumentInvalid(
            "job.json names folders other than its own job folders.", code="JOB_JSON_FOLDER_MISMATCH"
        )


def _imported_state(found: DiscoveredJob) -> JobState:
    """The state the import starts from: a job that never reached SLURM is a draft again; one caught between
    its submission and its first status (SUBMITTING with an id) is PENDING, so that the sync asks SLURM."""
    if found.state in TERMINAL_STATES:
        return found.state
    if not found.slurm_job_id:
        return JobState.DRAFT
    return JobState.PENDING if found.state == JobState.SUBMITTING else found.state
