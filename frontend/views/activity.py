"""The activity page: the remote commands the portal ran in the member's name (a lab admin: everyone's),
filterable by cluster and job (and member, for admins), newest first, in pages.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import User
from clusters import selectors as cluster_selectors
from clusters.access import usable_profiles
from clusters.models import RemoteCommandRecord
from jobs import selectors as job_selectors
from jobs.access import access_job, visible_jobs

PAGE_SIZE = 50


class ActivityFilterForm(forms.Form):
    cluster = forms.TypedChoiceField(label="Cluster", required=False, coerce=int, empty_value=None)
    job = forms.TypedChoiceField(
        label="Job",
        required=False,
        coerce=int,
        empty_value=None,
        help_text="Commands whose arguments name the job's folders, its SLURM job name or its scancel.",
    )
    member = forms.TypedChoiceField(label="Member", required=False, coerce=int, empty_value=None)

    def __init__(self, data: QueryDict, *, user: User) -> None:
        super().__init__(data)
        self.fields["cluster"].choices = [("", "Any cluster"), *usable_profiles(user).values_list("pk", "name")]
        jobs = list(job_selectors.recent_jobs(user))
        asked = data.get("job", "")
        if asked.isdigit() and all(job.pk != int(asked) for job in jobs):
            # A job older than the recent ones stays selectable if the user may see it.
            jobs += list(visible_jobs(user).filter(pk=int(asked)).only("id", "title"))
        self.fields["job"].choices = [("", "Any job"), *((job.pk, f"#{job.pk} {job.title}") for job in jobs)]
        if user.is_lab_admin:
            members = cluster_selectors.users_with_commands(user)
            self.fields["member"].choices = [("", "Every member"), *((m.pk, m.username) for m in members)]
        else:
            del self.fields["member"]


@dataclass(frozen=True)
class CommandRow:
    record: RemoteCommandRecord
    command: str  # the argv as the remote shell received it


@login_required
@require_GET
def activity(request: HttpRequest) -> HttpResponse:
    form = ActivityFilterForm(request.GET, user=request.user)
    is_valid = form.is_valid()
    filters = form.cleaned_data if is_valid else {}
    commands = cluster_selectors.remote_command_list(
        request.user, profile_id=filters.get("cluster"), user_id=filters.get("member")
    )
    if filters.get("job"):
        commands = job_selectors.commands_of_job(commands, access_job(user=request.user, job_id=filters["job"]))
    page = Paginator(commands if is_valid else commands.none(), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [CommandRow(record, shlex.join(str(part) for part in record.argv)) for record in page]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "page_prefix": f"?{query.urlencode()}&" if query else "?",
    }
    return render(request, "frontend/activity.html", context)
