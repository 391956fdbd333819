"""User-scoped reads on jobs: the filtered list (a constant number of queries whatever its size)."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from jobs.access import visible_jobs
from jobs.models import Job, JobState

LIST_COLUMNS_DEFERRED = ("config_text", "batch_script", "values", "resources")


def job_list(
    user: User, *, state: str | None = None, cluster_id: int | None = None, template: str | None = None,
    text: str | None = None,
) -> QuerySet[Job]:  # fmt: skip
    """The jobs `user` may see, newest first, filtered; owner, cluster and template come in the same query."""
    jobs = (
        visible_jobs(user)
        .select_related("owner", "profile", "template_version__template")
        .defer(*LIST_COLUMNS_DEFERRED)
    )
    if state:
        jobs = jobs.filter(state__in=[value for value in state.upper().split(",") if value in JobState.values])
    if cluster_id is not None:
        jobs = jobs.filter(profile_id=cluster_id)
    if template:
        jobs = jobs.filter(template_version__template__slug=template)
    if text:
        jobs = jobs.filter(title__icontains=text.strip()[:200])
    return jobs.order_by("-created_at", "-id")
