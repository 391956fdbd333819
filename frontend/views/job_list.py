"""The jobs list: filters and sort in the query string, pages of 25, rows that refresh themselves while their
job is active, and bulk cancel/delete through `jobs.services.bulk_action`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from clusters.access import usable_profiles
from jobs import selectors, services
from jobs.models import JobState
from portal.errors import InvalidInput
from templates_app.access import visible_templates

PAGE_SIZE = 25
SORT_LABELS = {
    "-created": "Newest first",
    "created": "Oldest first",
    "title": "Title, A to Z",
    "-title": "Title, Z to A",
    "state": "State, A to Z",
    "-state": "State, Z to A",
    "cluster": "Cluster, A to Z",
    "-cluster": "Cluster, Z to A",
    "-submitted": "Submitted, newest first",
    "submitted": "Submitted, oldest first",
}
# Columns whose header sorts the list: (sort key, label, direction of the first click).
SORTABLE_COLUMNS = (
    ("title", "Title", ""),
    ("state", "State", ""),
    ("cluster", "Cluster", ""),
    ("created", "Created", "-"),
)
MAX_REFUSALS_LISTED = 5
JOB_ID_RE = re.compile(r"[0-9]{1,18}")  # ASCII digits only ("²".isdigit() is true); fits a bigint


class JobFilterForm(forms.Form):
    q = forms.CharField(label="Name contains", required=False, max_length=200)
    state = forms.ChoiceField(label="State", required=False)
    cluster = forms.TypedChoiceField(label="Cluster", required=False, coerce=int, empty_value=None)
    template = forms.ChoiceField(label="Template", required=False)
    sort = forms.ChoiceField(label="Sort by", required=False)

    def __init__(self, data: QueryDict, *, user: User) -> None:
        super().__init__(data)
        groups = [(group.query, group.label) for group in selectors.STATE_GROUPS]
        self.fields["state"].choices = [("", "Any state"), ("Groups", groups), ("States", JobState.choices)]
        self.fields["cluster"].choices = [("", "Any cluster"), *usable_profiles(user).values_list("pk", "name")]
        self.fields["template"].choices = [("", "Any template"), *visible_templates(user).values_list("slug", "name")]
        self.fields["sort"].choices = [(key, SORT_LABELS[key]) for key in SORT_LABELS]


@dataclass(frozen=True)
class SortHeader:
    label: str
    url: str
    aria_sort: str  # "ascending", "descending" or "" (not sorted by this column)


def _query(params: QueryDict, *drop: str) -> str:
    kept = params.copy()
    for name in drop:
        kept.pop(name, None)
    return kept.urlencode()


def _sort_headers(params: QueryDict, sort: str) -> dict[str, SortHeader]:
    """Each sortable column's header by sort key: its link (toggling the direction) and aria-sort."""
    base = _query(params, "sort", "page")
    headers = {}
    for key, label, first in SORTABLE_COLUMNS:
        if sort == key:
            aria_sort, next_sort = "ascending", "-" + key
        elif sort == "-" + key:
            aria_sort, next_sort = "descending", key
        else:
            aria_sort, next_sort = "", first + key
        headers[key] = SortHeader(label, "?" + "&".join(filter(None, [base, f"sort={next_sort}"])), aria_sort)
    return headers


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    form = JobFilterForm(request.GET, user=request.user)
    is_valid = form.is_valid()
    filters = form.cleaned_data if is_valid else {}
    sort = filters.get("sort") or selectors.DEFAULT_SORT
    jobs = selectors.job_list(
        request.user,
        state=filters.get("state"),
        cluster_id=filters.get("cluster"),
        template=filters.get("template"),
        text=filters.get("q"),
        sort=sort,
    )
    page = Paginator(jobs if is_valid else jobs.none(), PAGE_SIZE).get_page(request.GET.get("page"))
    page_query = _query(request.GET, "page")
    context = {
        "form": form,
        "page": page,
        "rows_poll": any(job.state != JobState.DRAFT and not job.is_terminal for job in page),
        "page_prefix": f"?{page_query}&" if page_query else "?",
        "sort_headers": _sort_headers(request.GET, sort),
        "return_query": request.GET.urlencode(),
    }
    # The rows' own poll (htmx) gets the table body only.
    return render(request, "frontend/_job_rows.html" if request.htmx else "frontend/job_list.html", context)


def _posted_job_ids(values: list[str]) -> list[int]:
    """The ids of the checked rows. Raises InvalidInput (BULK_IDS_INVALID) for anything but ids of 1 to 18 digits."""
    if not all(JOB_ID_RE.fullmatch(value) for value in values):
        raise InvalidInput("The selection was not understood; reload the list and try again.", code="BULK_IDS_INVALID")
    return [int(value) for value in values]


def _jobs(count: int) -> str:
    return f"{count} job" if count == 1 else f"{count} jobs"


def _summary(result: services.BulkResult) -> str:
    verb = "Cancelled" if result.action == "cancel" else "Deleted"
    parts = []
    if result.done:
        done = f"{verb} {_jobs(len(result.done))}"
        if result.action == "cancel":
            done += " (a job already on a cluster ends once SLURM confirms)"
        parts.append(done)
    if result.refused:
        reasons = "; ".join(
            f"#{refusal.job_id}: {refusal.message} ({refusal.code})" for refusal in result.refused[:MAX_REFUSALS_LISTED]
        )
        more = len(result.refused) - MAX_REFUSALS_LISTED
        if more > 0:
            reasons += f"; and {more} more"
        parts.append(f"{_jobs(len(result.refused))} could not be {verb.lower()}: {reasons}")
    return "; ".join(parts) + "."


@login_required
@require_POST
def bulk_action(request: HttpRequest) -> HttpResponse:
    # Only the query string is taken back: the redirect always stays on the jobs list.
    back = reverse("frontend:job_list")
    query = QueryDict(request.POST.get("return_query", "")).urlencode()
    back += f"?{query}" if query else ""
    try:
        result = services.bulk_action(
            user=request.user,
            job_ids=_posted_job_ids(request.POST.getlist("job_ids")),
            action=request.POST.get("action", ""),
        )
    except InvalidInput as exc:
        messages.error(request, exc.user_message)
        return HttpResponseRedirect(back)
    if result.refused and not result.done:
        messages.error(request, _summary(result))
    elif result.refused:
        messages.warning(request, _summary(result))
    else:
        messages.success(request, _summary(result))
    return HttpResponseRedirect(back)
