"""Sweeps: the list (yours, or the lab's for a lab admin) and a sweep's page: one row per point (its swept values,
state, stage, progress, final energies, the job or run behind it), polled while anything moves; the inputs
uploaded once (the job wizard's upload partials, on the job that holds them); the actions submit, cancel and
retry the points that failed; the CSV export and a plot of a figure against a swept variable, both read from the
sweeps API.

Views parse input, make one access, selector or service call and render; every sweep is loaded through
`jobs.access` (another member's sweep is a 404; a lab admin sees it, and may act on none: 403). A page costs
the same queries for 10 points or 2,000: the totals read a few columns of every point in one query, the points
table shows a page of rows (read in one or two). Nothing here talks to a cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from frontend.views.wizard import upload_context
from jobs import services, sweep_selectors
from jobs.access import access_job, access_sweep, can_act_on_sweep
from jobs.models import Sweep
from jobs.sweep_selectors import FIGURES, SweepRow
from portal.errors import Forbidden, NotFound, PortalError

PAGE_SIZE = 25
POINTS_PER_PAGE = 25  # rows of a sweep's points table; the totals, the plot and the CSV cover every point
SETTLED_EVENT = "sweep-settled"  # HX-Trigger once nothing moves: sweep_plot.js reads the plot a last time


@dataclass(frozen=True)
class SweepListRow:
    sweep: Sweep
    states: list[tuple[str, int]]  # (state, points), in the order of a job's life


@dataclass(frozen=True)
class PointRow:
    """A row of the points table: the selector's row and its swept values in the axes' order."""

    row: SweepRow
    cells: list[str]  # the swept values as shown
    figures: list[str]  # ns/day, TOTAL, POTENTIAL, KINETIC, TEMP as shown (formatted here, not by template filters)


FIGURE_FORMATS = (
    ("ns_per_day", "{:.2f}"),
    ("TOTAL", "{:.4f}"),
    ("POTENTIAL", "{:.4f}"),
    ("KINETIC", "{:.4f}"),
    ("TEMP", "{:.2f}"),
)


def _cells(row: SweepRow, names: list[str]) -> list[str]:
    return ["" if (value := row.values.get(name)) is None else str(value) for name in names]


def _figures(row: SweepRow) -> list[str]:
    values = {"ns_per_day": row.ns_per_day, **row.energies}
    return ["—" if values.get(name) is None else form.format(values[name]) for name, form in FIGURE_FORMATS]


@login_required
@require_GET
def sweep_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(sweep_selectors.sweep_list(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    sweeps = list(page)
    counts = sweep_selectors.sweep_state_counts(sweeps)
    rows = [SweepListRow(sweep, sweep_selectors.states_in_order(counts[sweep.pk])) for sweep in sweeps]
    is_moving = any(state in sweep_selectors.MOVING_STATES for counted in counts.values() for state in counted)
    context = {"page": page, "rows": rows, "rows_poll": is_moving, "page_prefix": "?"}
    # The rows' own poll (htmx) gets the table body only.
    return render(request, "frontend/_sweep_rows.html" if request.htmx else "frontend/sweep_list.html", context)


def _sweep_context(request: HttpRequest, sweep: Sweep) -> dict[str, Any]:
    """What the page and its polled panel show: the totals of every point, one page of rows, what can be done
    next. The totals read a few columns of every point; only the page's rows read their logs."""
    states = sweep_selectors.point_states(sweep)
    summary = sweep_selectors.sweep_summary(states)
    page = Paginator(states, POINTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = sweep_selectors.sweep_rows(sweep, offset=(page.number - 1) * POINTS_PER_PAGE, limit=POINTS_PER_PAGE)
    names = sweep_selectors.axis_names(sweep)
    return {
        "sweep": sweep,
        "axis_names": names,
        "points": [PointRow(row, _cells(row, names), _figures(row)) for row in rows],
        "page": page,
        "summary": summary,
        "summary_states": sweep_selectors.states_in_order(summary.states),
        "actions": sweep_selectors.sweep_actions(sweep, states),
        "can_act": can_act_on_sweep(request.user, sweep),
        "is_protocol": sweep.protocol_id is not None,
        "csv_url": reverse("api:sweep_csv", kwargs={"sweep_id": sweep.pk}),
    }


@login_required
@require_GET
def sweep_detail(request: HttpRequest, sweep_id: int) -> HttpResponse:
    sweep = access_sweep(user=request.user, sweep_id=sweep_id)
    context = _sweep_context(request, sweep)
    if context["can_act"] and context["actions"].inputs_open:
        # the upload section and the inputs status of the job that takes the sweep's inputs
        holder = access_job(user=request.user, job_id=sweep_selectors.inputs_job_id(sweep) or 0)
        context = {**upload_context(holder), **context, "holder": holder}
    context |= {
        "plot_url": reverse("api:sweep_plot", kwargs={"sweep_id": sweep.pk}),
        "figures": [(name, figure.label) for name, figure in FIGURES.items()],
    }
    return render(request, "frontend/sweep_detail.html", context)


@login_required
@require_GET
def live_panel(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """The polled part (the totals, the rows, the actions); once nothing moves it stops and tells the plot to read
    a last time."""
    context = _sweep_context(request, access_sweep(user=request.user, sweep_id=sweep_id))
    response = render(request, "frontend/_sweep_live.html", context)
    if not context["summary"].is_moving:
        response["HX-Trigger"] = SETTLED_EVENT
    return response


def _act(
    request: HttpRequest, sweep_id: int, action: Callable[..., tuple[Sweep, str]], said: Callable[[Sweep, str], str]
) -> HttpResponse:
    """One of the owner's actions, then back to the sweep's page with what happened (a refusal with its code)."""
    try:
        sweep, task_id = action(user=request.user, sweep_id=sweep_id)
    except (NotFound, Forbidden):
        raise
    except PortalError as exc:
        messages.error(request, f"{exc.user_message} ({exc.code})")
    else:
        messages.success(request, said(sweep, task_id))
    return redirect("frontend:sweep_detail", sweep_id=sweep_id)


def _submitted(sweep: Sweep, task_id: str) -> str:
    at_once = f"at most {sweep.max_running} at a time" if sweep.max_running else "all at once"
    return f"Submitted: the points go to SLURM, {at_once}, each once it has the inputs."


def _cancelled(sweep: Sweep, task_id: str) -> str:
    if task_id:
        return "Cancel requested: the points not yet sent are cancelled, the queued ones when SLURM confirms it."
    return "The sweep is cancelled."


def _retried(sweep: Sweep, task_id: str) -> str:
    return "The points that did not complete run again, as places free up."


@login_required
@require_POST
def submit(request: HttpRequest, sweep_id: int) -> HttpResponse:
    return _act(request, sweep_id, services.request_submit_sweep, _submitted)


@login_required
@require_POST
def cancel(request: HttpRequest, sweep_id: int) -> HttpResponse:
    return _act(request, sweep_id, services.request_cancel_sweep, _cancelled)


@login_required
@require_POST
def retry(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """Every point that ended without completing runs again, through the gate."""
    return _act(request, sweep_id, services.retry_failed_points, _retried)
