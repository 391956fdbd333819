"""The next stage of a protocol: a job that starts in a copy of a finished job's folder.

CHARMM-GUI's stages read what the stage before wrote (`step5_production.inp` reads
`step4_equilibration.coor/.vel/.xsc` beside it), so the next stage's project folder starts as a
copy, made on the cluster, of the previous job's project folder (its inputs and its results, not
its config, batch script or logs). Every file copied becomes an input of the new job, checked like
an upload; the stage's own config then says what it still misses.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from clusters import access as cluster_access
from jobs import layout, remote
from jobs.access import access_job_for_task, access_job_to_act
from jobs.models import TERMINAL_STATES, InputFile, Job, JobState
from jobs.services.creation import add_job, place_job, render_job
from jobs.services.inputs import input_roles
from jobs.services.readiness import refresh_readiness
from jobs.transitions import record_task_failure, transition
from portal.enqueue import enqueue_on_commit
from portal.errors import ClusterUnreachable, Conflict, PortalError
from portal.queues import cluster_queue
from templates_app import access as template_access
from templates_app import batch_script
from templates_app import selectors as template_selectors
from templates_app.models import Template

NOT_CARRIED = (layout.METADATA_FILENAME, "slurm-*.out", "slurm-*.err", layout.SCRIPT_FILENAME)


def next_stage_template(job: Job, user: User) -> Template | None:
    """The template after this job's in its family (CHARMM-GUI's step5 after step4), if the user may use it."""
    current = job.template_version.template
    if not current.family:
        return None
    later = template_selectors.offered_templates(user).filter(family=current.family, stage__gt=current.stage)
    return later.order_by("stage", "name").first()


def request_next_stage(
    *,
    user: User,
    job_id: int,
    template_id: int,
    values: dict[str, Any] | None = None,
    title: str = "",
    submit: bool = False,
) -> tuple[Job, str]:
    """A new job of `template_id` starting from a copy of job `job_id`'s folder; a task makes the copy.

    Raises NotFound, Conflict (JOB_NOT_FINISHED, TEMPLATE_RETIRED), TemplateError, InvalidInput.
    """
    previous = access_job_to_act(user=user, job_id=job_id)
    if previous.state not in TERMINAL_STATES or previous.finished_at is None:
        raise Conflict("The next stage starts once this job's results are back.", code="JOB_NOT_FINISHED")
    template = template_access.access_template(user=user, template_id=template_id)
    if template.is_retired:
        raise Conflict("This template is retired; choose another.", code="TEMPLATE_RETIRED")
    version = template_selectors.latest_version(template)
    profile = previous.profile
    recipe = cluster_access.access_launch_recipe(profile=profile, name=previous.recipe_name)
    new = place_job(owner=previous.owner, profile=profile, slug=template.slug)
    title = (title.strip() or f"{previous.title}: {template.name}")[:200]
    config, script, rendered_values = render_job(
        job_uuid=new.uuid,
        version=version,
        values=values or {},
        profile=profile,
        recipe=recipe,
        resources=batch_script.Resources(**previous.resources),
        title=title,
        scratch_dir=new.scratch_dir,
    )
    with transaction.atomic():
        job = add_job(
            new=new,
            version=version,
            actor=user,
            source="user",
            detail=f"next stage after job {previous.pk}",
            owner=previous.owner,
            profile=profile,
            parent=previous,
            title=title,
            values=rendered_values,
            resources=previous.resources,
            recipe_name=previous.recipe_name,
            config_text=config,
            batch_script=script,
            submit_when_ready=submit,
        )
        return job, enqueue_on_commit(
            "jobs.tasks.copy_previous_stage_task", job.pk, user.pk, queue=cluster_queue(job.profile_id)
        )


def copy_previous_stage(*, job_id: int, acting_user_id: int, task_id: str = "") -> None:
    """Copy the previous job's folder into this one's on the cluster and register its files as inputs.

    Raises ClusterUnreachable (retry); other failures leave the job a DRAFT with the error code.
    """
    job = access_job_for_task(acting_user_id=acting_user_id, job_id=job_id)
    previous = job.parent
    if previous is None:
        return
    if job.state != JobState.DRAFT or job.inputs.exists():  # a redelivered task: the copy is registered
        refresh_readiness(job)
        return
    excluded = [*NOT_CARRIED, previous.config_path]
    try:
        session = remote.member_session(job, acting_user_id=acting_user_id, task_id=task_id)
        remote.make_dirs(session, job.project_dir)
        session.confined(previous.project_dir)
        session.run(remote.copy_folder_argv(previous.project_dir, job.project_dir, excluded), check=True)
        listed = session.run(
            remote.list_dir_argv(job.project_dir, depth=16), check=True, max_output_bytes=remote.LISTING_MAX_BYTES
        )
        listing = remote.parse_listing(listed.stdout)
    except ClusterUnreachable:
        raise
    except PortalError as exc:
        record_task_failure(job, "STAGE_COPY_FAILED", exc)
        return
    roles = input_roles(job.config_text, job.config_path)
    known = {f.name: f for f in previous.inputs.all()}
    with transaction.atomic():
        InputFile.objects.bulk_create(
            InputFile(
                job=job,
                name=entry.path,
                role=roles.get(entry.path, ""),
                size_bytes=entry.size_bytes,
                sha256=known[entry.path].sha256 if entry.path in known else "",
                atom_count=known[entry.path].atom_count if entry.path in known else None,
                state=InputFile.State.UPLOADED,
                bytes_uploaded=entry.size_bytes,
                uploaded_at=timezone.now(),
                copied_from=f"{previous.project_dir}/{entry.path}",
            )
            for entry in listing
            if not entry.is_dir
        )
        transition(job, JobState.UPLOADING, source="task", detail=f"started from job {previous.pk}'s folder")
    refresh_readiness(Job.objects.get(pk=job.pk))
