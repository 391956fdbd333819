"""Finding a member's jobs again from their project folders: each job's `job.json` read back.

A member who lost the portal's database (or used another portal) asks for a discovery on one
cluster; a task lists the job.json files one level below their project root, reads them 100 per
exec and imports the jobs the portal does not know yet. A document that is not ours, names another
cluster or another folder, or a template the portal lacks is counted as unreadable, never guessed.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from clusters import access as cluster_access
from clusters.models import ClusterProfile
from jobs import remote
from jobs.metadata import MAX_JOB_JSON_BYTES, JobDocumentInvalid, parse_job_document
from jobs.models import TERMINAL_STATES, Job, JobEvent, JobState
from portal.enqueue import enqueue_on_commit
from portal.errors import InvalidInput
from templates_app.models import TemplateVersion

READS_PER_EXEC = 100


def request_discovery(*, user: User, cluster_id: int) -> str:
    """Enqueue a discovery of the member's jobs on one cluster. Raises NotFound (no credential of theirs)."""
    credential = cluster_access.access_own_credential(user=user, profile_id=cluster_id)
    return enqueue_on_commit("jobs.tasks.discover_jobs_task", user.pk, credential.profile_id)


def discover_jobs(*, user_id: int, profile_id: int, task_id: str = "") -> dict[str, int]:
    """Re-import the member's jobs from the job.json files in their project root; known uuids are skipped."""
    user = User.objects.get(pk=user_id)
    credential = cluster_access.access_own_credential(user=user, profile_id=profile_id)
    session = remote.credential_session(credential, task_id=task_id)
    project_root = session.roots[0]
    listing = session.run(remote.find_job_documents_argv(project_root, MAX_JOB_JSON_BYTES))
    paths = [line for line in listing.stdout.splitlines() if line.startswith(project_root + "/")]
    counts = {"found": len(paths), "imported": 0, "known": 0, "unreadable": 0}
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
            outcome = import_job_document(user, credential.profile, path, text)
            counts[outcome] += 1
    return counts


def import_job_document(user: User, profile: ClusterProfile, path: str, text: str) -> str:
    """Import one job.json read at `path`: "imported", "known" (its uuid is here) or "unreadable"."""
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
            uuid=found.uuid,
            owner=user,
            profile=profile,
            template_version=version,
            title=found.title,
            values=found.values,
            resources=found.resources,
            recipe_name=found.recipe,
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
    return "imported"
