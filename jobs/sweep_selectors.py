"""Reading a sweep for its page and the API: one row per point, the totals, the CSV and a figure per point; for the
pages also what the owner may do next, the points by state of a page of sweeps, and the point a job or run is.

A row holds what a table shows of a point: its swept values, its state (the job's, or the pipeline run's),
the current stage of a run, NAMD's last step and ns/day, and the final TOTAL/POTENTIAL/KINETIC/TEMP
(the last ENERGY line the log reader kept), with the ids to link to. The rows cost a constant number of
queries whatever the number of points, and read the figures each progress row keeps beside its log state,
never the state's series; a page's totals read a few columns of every point (`point_states`). Reads only.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Prefetch, QuerySet
from django.db.models.fields.json import KeyTransform

from accounts.models import User
from jobs.access import visible_sweeps
from jobs.models import (
    EDITABLE_STATES,
    TERMINAL_STATES,
    Job,
    JobProgress,
    JobState,
    Sweep,
    SweepPoint,
    awaits_cluster_by_columns,
)
from jobs.namd_log import LogProgress
from jobs.pipeline_steps import current_steps, pipeline_status
from portal.errors import InvalidInput

ENERGY_COLUMNS = ("TOTAL", "POTENTIAL", "KINETIC", "TEMP")
BULKY_JOB_COLUMNS = ("config_text", "batch_script", "resources")
LOG_FACTS = ("log_last_step", "log_ns_per_day", *(f"log_{column}" for column in ENERGY_COLUMNS))


@dataclass(frozen=True)
class SweepRow:
    index: int
    values: dict[str, Any]  # the swept variables' values at this point
    state: str  # the job's state, or the run's (DRAFT, READY, RUNNING, COMPLETED, FAILED, CANCELLED)
    is_waiting: bool  # flagged and ready: the sweep's gate starts it when there is room
    stage: str  # a run's current step ("production 2/3"); "" for a template point
    steps_done: int | None  # a run's completed steps, of steps_total
    steps_total: int | None
    last_step: int | None
    ns_per_day: float | None
    energies: dict[str, float | None]  # ENERGY_COLUMNS of the last ENERGY line
    job_id: int | None  # the point's job; for a run, the step shown (current, or the last that logged)
    pipeline_id: int | None
    error_code: str
    error_message: str
    is_active: bool = False  # submitted and not settled: more will come from the cluster


def sweep_list(user: User) -> QuerySet[Sweep]:
    """The sweeps `user` may see, newest first, with their template or protocol and point count (one query)."""
    return (
        visible_sweeps(user)
        .select_related("owner", "profile", "template_version__template", "protocol")
        .defer("template_version__body", "template_version__variables")
        .annotate(point_count=Count("points"))
        .order_by("-created_at", "-id")
    )


def _log_facts(prefix: str = "") -> dict[str, Any]:
    """What a row shows of a job's log, as annotations: the progress row's figures kept beside its log state
    (never the state itself, whose series may weigh a hundred kilobytes a job)."""
    progress = f"{prefix}progress__"
    return {
        "log_last_step": F(f"{progress}last_step"),
        "log_ns_per_day": F(f"{progress}ns_per_day"),
        **{f"log_{column}": KeyTransform(column, f"{progress}final_energies") for column in ENERGY_COLUMNS},
    }


@dataclass(frozen=True)
class _Logged:
    """A row's figures from the annotated `_log_facts`."""

    last_step: int | None = None
    ns_per_day: float | None = None
    energies: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(ENERGY_COLUMNS))

    @classmethod
    def of(cls, facts: Any) -> _Logged:
        """`facts`: a dict of the LOG_FACTS, or an object that has them as attributes."""
        found = facts if isinstance(facts, dict) else {name: getattr(facts, name) for name in LOG_FACTS}
        energies = {column: found[f"log_{column}"] for column in ENERGY_COLUMNS}
        return cls(found["log_last_step"], found["log_ns_per_day"], energies)


def sweep_rows(sweep: Sweep, *, offset: int = 0, limit: int | None = None) -> list[SweepRow]:
    """One row per point in index order (`limit` of them from the `offset`-th, or all): one query for a template
    sweep, two for a protocol sweep."""
    points = SweepPoint.objects.filter(sweep=sweep).order_by("index")
    points = points[offset : offset + limit] if limit is not None else points[offset:]
    if sweep.protocol_id is None:
        return _template_rows(points)
    return _protocol_rows(points)


def _template_rows(points: QuerySet[SweepPoint]) -> list[SweepRow]:
    """Plain values, no model instances: a row costs its few columns whatever the number of points."""
    found = points.annotate(**_log_facts("job__")).values(
        "index",
        "values",
        "job_id",
        "job__state",
        "job__submit_when_ready",
        "job__error_code",
        "job__error_message",
        "job__finished_at",
        "job__slurm_job_id",
        *LOG_FACTS,
    )
    rows = []
    for point in found:
        log = _Logged.of(point)
        rows.append(
            SweepRow(
                index=point["index"],
                values=point["values"],
                state=point["job__state"],
                is_waiting=point["job__state"] == JobState.READY and point["job__submit_when_ready"],
                stage="",
                steps_done=None,
                steps_total=None,
                last_step=log.last_step,
                ns_per_day=log.ns_per_day,
                energies=log.energies,
                job_id=point["job_id"],
                pipeline_id=None,
                error_code=point["job__error_code"],
                error_message=point["job__error_message"],
                is_active=awaits_cluster_by_columns(
                    point["job__state"], finished_at=point["job__finished_at"], slurm_job_id=point["job__slurm_job_id"]
                ),
            )
        )
    return rows


def _protocol_rows(points: QuerySet[SweepPoint]) -> list[SweepRow]:
    steps = Job.objects.defer(*BULKY_JOB_COLUMNS, "values").annotate(**_log_facts())
    found = points.select_related("pipeline").prefetch_related(Prefetch("pipeline__steps", queryset=steps))
    rows = []
    for point in found:
        run = point.pipeline
        current = current_steps(run, jobs=list(run.steps.all()))
        status = pipeline_status(current, cancel_requested=run.cancel_requested_at is not None)
        logged = [step for step in current if step.log_last_step is not None]
        shown = status.current if status.current is not None and status.current.log_last_step is not None else None
        shown = shown or (logged[-1] if logged else status.current)
        log = _Logged.of(shown) if shown is not None else _Logged()
        rows.append(
            SweepRow(
                index=point.index,
                values=point.values,
                state=status.state,
                is_waiting=_is_waiting(current),
                stage=status.current.stage_name if status.current is not None else "",
                steps_done=status.done,
                steps_total=status.total,
                last_step=log.last_step,
                ns_per_day=log.ns_per_day,
                energies=log.energies,
                job_id=shown.pk if shown is not None else None,
                pipeline_id=run.pk,
                error_code=status.current.error_code if status.current is not None else "",
                error_message=status.current.error_message if status.current is not None else "",
                is_active=any(step.awaits_cluster for step in current),
            )
        )
    return rows


def _is_waiting(current: Sequence[Job | _Step]) -> bool:
    """A run flagged and ready: its first step not sent is READY and marked to go when there is room."""
    waiting = next((step for step in current if step.state in EDITABLE_STATES), None)
    return waiting is not None and waiting.state == JobState.READY and waiting.submit_when_ready


@dataclass(frozen=True)
class PointState:
    """What the totals and the actions read of a point, from a few columns: cheap for every point of a sweep."""

    index: int
    state: str  # the job's, or the run's
    is_waiting: bool
    is_active: bool


@dataclass(frozen=True)
class _Step:
    """A run's step as `pipeline_status` reads it, from a few columns (no model instance: a page may count
    thousands of steps)."""

    pk: int
    position: int
    state: str
    submit_when_ready: bool
    finished_at: datetime | None
    slurm_job_id: str

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def awaits_cluster(self) -> bool:
        return awaits_cluster_by_columns(self.state, finished_at=self.finished_at, slurm_job_id=self.slurm_job_id)


def point_states(sweep: Sweep) -> list[PointState]:
    """Every point's state in index order, in one query (whatever the number of points)."""
    read = _template_point_states if sweep.protocol_id is None else _protocol_point_states
    found = read([sweep.pk])
    return sorted(found[sweep.pk], key=lambda point: point.index)


def _template_point_states(sweep_ids: list[int]) -> dict[int, list[PointState]]:
    found: dict[int, list[PointState]] = defaultdict(list)
    columns = ("sweep_id", "index", "job__state", "job__submit_when_ready", "job__finished_at", "job__slurm_job_id")
    for sweep_id, index, state, flagged, finished_at, slurm_job_id in (
        SweepPoint.objects.filter(sweep_id__in=sweep_ids).order_by().values_list(*columns)
    ):
        is_active = awaits_cluster_by_columns(state, finished_at=finished_at, slurm_job_id=slurm_job_id)
        found[sweep_id].append(PointState(index, state, state == JobState.READY and flagged, is_active))
    return found


def _protocol_point_states(sweep_ids: list[int]) -> dict[int, list[PointState]]:
    """Each run's state from its steps' few columns, as `pipeline_status` derives it for a run's page."""
    steps: dict[int, list[_Step]] = defaultdict(list)
    runs: dict[int, tuple[int, int, bool]] = {}  # run id: (sweep id, point index, cancel requested)
    point = "pipeline__sweep_point__"
    columns = ("pk", "position", "state", "submit_when_ready", "finished_at", "slurm_job_id")
    for run_id, sweep_id, index, cancel_requested_at, *step in (
        Job.objects.filter(**{f"{point}sweep_id__in": sweep_ids})
        .order_by()
        .values_list("pipeline_id", f"{point}sweep_id", f"{point}index", "pipeline__cancel_requested_at", *columns)
    ):
        runs[run_id] = (sweep_id, index, cancel_requested_at is not None)
        steps[run_id].append(_Step(*step))
    found: dict[int, list[PointState]] = defaultdict(list)
    for run_id, (sweep_id, index, cancelled) in runs.items():
        current = current_steps(None, jobs=steps[run_id])  # the jobs are given: no run is read
        status = pipeline_status(current, cancel_requested=cancelled)
        is_active = any(step.awaits_cluster for step in current)
        found[sweep_id].append(PointState(index, status.state, _is_waiting(current), is_active))
    return found


@dataclass(frozen=True)
class SweepSummary:
    points: int
    states: dict[str, int]  # points by state, states in order of first appearance
    waiting: int  # flagged and ready, waiting for room in the gate
    active: int = 0  # submitted and not settled

    @property
    def is_moving(self) -> bool:
        """Something changes without the member: a point awaits the cluster, waits for a place in the gate, or
        is getting the sweep's inputs copied in (a page polls while this holds)."""
        return bool(self.active or self.waiting or self.states.get(JobState.UPLOADING))


def sweep_summary(rows: Sequence[PointState] | Sequence[SweepRow]) -> SweepSummary:
    """The totals of every point (their states, or their rows)."""
    return SweepSummary(
        len(rows),
        dict(Counter(row.state for row in rows)),
        sum(row.is_waiting for row in rows),
        active=sum(row.is_active for row in rows),
    )


STATE_ORDER = {state: position for position, state in enumerate(JobState.values)}  # a job's life, start to end


def states_in_order(counts: dict[str, int]) -> list[tuple[str, int]]:
    """(state, points) in the order of a job's life: drafts first, the ended last."""
    return sorted(counts.items(), key=lambda item: STATE_ORDER.get(item[0], len(STATE_ORDER)))


@dataclass(frozen=True)
class SweepActions:
    """What a sweep's owner may ask next, as its page offers it (the services decide, with their codes)."""

    can_submit: bool  # a point not yet submitted nor waiting for a place, and the sweep not cancelled
    can_cancel: bool  # a point that has not ended
    can_retry: bool  # a point that ended without completing, its results back
    inputs_open: bool  # the inputs may still be uploaded: the job that takes them (point 0's) is not sent yet


def sweep_actions(sweep: Sweep, rows: Sequence[PointState] | Sequence[SweepRow]) -> SweepActions:
    """From every point, in index order (their states, or their rows)."""
    ended = [row for row in rows if row.state in TERMINAL_STATES]
    unsent = [row for row in rows if row.state in EDITABLE_STATES and not row.is_waiting]
    return SweepActions(
        can_submit=sweep.cancel_requested_at is None and bool(unsent),
        can_cancel=len(ended) < len(rows),
        can_retry=any(row.state != JobState.COMPLETED and not row.is_active for row in ended),
        # point 0's job, or its run's first step not sent, takes them (`inputs_job_id`): its row's state says it
        inputs_open=bool(rows) and rows[0].state in EDITABLE_STATES,
    )


# States of a point as a list of sweeps counts them (a job's, or a run's) that change without the member.
MOVING_STATES = frozenset({"UPLOADING", "SUBMITTING", "PENDING", "RUNNING", "COMPLETING"})


def sweep_state_counts(sweeps: Sequence[Sweep]) -> dict[int, dict[str, int]]:
    """The points of each sweep by state (a job's, or a pipeline run's), for a page of sweeps: one query for the
    template sweeps and one for the protocol sweeps, whatever their number and their points'."""
    counts: dict[int, Counter[str]] = {sweep.pk: Counter() for sweep in sweeps}
    template_ids = [sweep.pk for sweep in sweeps if sweep.protocol_id is None]
    protocol_ids = [sweep.pk for sweep in sweeps if sweep.protocol_id is not None]
    if template_ids:
        by_state = (
            SweepPoint.objects.filter(sweep_id__in=template_ids)
            .order_by()
            .values("sweep_id", "job__state")
            .annotate(count=Count("pk"))
        )
        for found in by_state:
            counts[found["sweep_id"]][found["job__state"]] += found["count"]
    if protocol_ids:
        for sweep_id, points in _protocol_point_states(protocol_ids).items():
            counts[sweep_id].update(point.state for point in points)
    return {sweep_id: dict(found) for sweep_id, found in counts.items()}


def sweep_point_of(user: User, *, job_id: int | None = None, pipeline_id: int | None = None) -> SweepPoint | None:
    """The point (with its sweep, if `user` sees it) that a pipeline run is, or else that a job is."""
    points = SweepPoint.objects.filter(sweep__in=visible_sweeps(user)).select_related("sweep")
    if pipeline_id is not None:
        return points.filter(pipeline_id=pipeline_id).first()
    return points.filter(job_id=job_id).first() if job_id is not None else None


# ------------------------------------------------------------------ export and figures


def axis_names(sweep: Sweep) -> list[str]:
    return [str(axis["name"]) for axis in sweep.axes]


def _cell(value: Any) -> Any:
    """A CSV cell; text a spreadsheet would run as a formula (=, +, -, @ first) is kept as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value


def sweep_csv(sweep: Sweep, rows: list[SweepRow]) -> str:
    """The rows as CSV: index, one column per swept variable, state, stage, progress, energies, ids."""
    names = axis_names(sweep)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    energy_heads = [f"final_{column.lower()}" for column in ENERGY_COLUMNS]
    tail_heads = ["error_code", "job_id", "pipeline_id"]
    writer.writerow(["index", *names, "state", "stage", "last_step", "ns_per_day", *energy_heads, *tail_heads])
    for row in rows:
        writer.writerow(
            [
                _cell(value)
                for value in (
                    row.index,
                    *(row.values.get(name) for name in names),
                    row.state,
                    row.stage,
                    row.last_step,
                    row.ns_per_day,
                    *(row.energies[column] for column in ENERGY_COLUMNS),
                    row.error_code,
                    row.job_id,
                    row.pipeline_id,
                )
            ]
        )
    return buffer.getvalue()


@dataclass(frozen=True)
class Figure:
    label: str
    unit: str


FIGURES = {
    "total_energy": Figure("Final total energy", "kcal/mol"),
    "potential_energy": Figure("Final potential energy", "kcal/mol"),
    "kinetic_energy": Figure("Final kinetic energy", "kcal/mol"),
    "temperature": Figure("Final temperature", "K"),
    "mean_temperature": Figure("Mean temperature over the run", "K"),
    "ns_per_day": Figure("Speed", "ns/day"),
    "last_step": Figure("Last step", "steps"),
}
FINAL_ENERGY_FIGURES = {
    "total_energy": "TOTAL",
    "potential_energy": "POTENTIAL",
    "kinetic_energy": "KINETIC",
    "temperature": "TEMP",
}


@dataclass(frozen=True)
class FigureSeries:
    label: str  # the other swept variables' values this series holds fixed ("" with one axis)
    points: list[tuple[Any, float]]  # (swept value, figure), in the axis's order


@dataclass(frozen=True)
class SweepPlot:
    figure: str
    label: str
    unit: str
    axis: str
    series: list[FigureSeries]


def sweep_plot(sweep: Sweep, rows: list[SweepRow], *, figure: str, axis: str | None = None) -> SweepPlot:
    """A figure of every point that has it against a swept variable, one series per combination of the other
    swept variables. Raises InvalidInput (SWEEP_FIGURE_UNKNOWN, SWEEP_AXIS_UNKNOWN)."""
    if figure not in FIGURES:
        raise InvalidInput(
            f"Choose a figure: {', '.join(FIGURES)}.", code="SWEEP_FIGURE_UNKNOWN", details={"figures": list(FIGURES)}
        )
    names = axis_names(sweep)
    axis = axis or names[0]
    if axis not in names:
        raise InvalidInput(f"Choose a swept variable: {', '.join(names)}.", code="SWEEP_AXIS_UNKNOWN")
    values = _figure_values(rows, figure)
    others = [name for name in names if name != axis]
    order = {_key(value): position for position, value in enumerate(_axis_values(sweep, axis))}
    grouped: dict[str, list[tuple[Any, float]]] = {}
    for row in rows:
        label = ", ".join(f"{name}={row.values.get(name)}" for name in others)
        points = grouped.setdefault(label, [])
        if values.get(row.index) is not None:
            points.append((row.values.get(axis), values[row.index]))
    series = [
        FigureSeries(label, sorted(points, key=lambda point: order.get(_key(point[0]), len(order))))
        for label, points in grouped.items()
    ]
    return SweepPlot(figure, FIGURES[figure].label, FIGURES[figure].unit, axis, series)


def _key(value: Any) -> str:
    return repr(value)


def _axis_values(sweep: Sweep, name: str) -> list[Any]:
    return next((list(axis["values"]) for axis in sweep.axes if axis["name"] == name), [])


def _figure_values(rows: list[SweepRow], figure: str) -> dict[int, float | None]:
    """The figure of each row by index; the mean temperature reads the TEMP series (one query)."""
    if figure in FINAL_ENERGY_FIGURES:
        return {row.index: row.energies[FINAL_ENERGY_FIGURES[figure]] for row in rows}
    if figure == "ns_per_day":
        return {row.index: row.ns_per_day for row in rows}
    if figure == "last_step":
        return {row.index: float(row.last_step) if row.last_step is not None else None for row in rows}
    states = dict(
        JobProgress.objects.filter(job_id__in=[row.job_id for row in rows if row.job_id]).values_list(
            "job_id", "log_state"
        )
    )
    means = {}
    for row in rows:
        series = LogProgress.from_state(states[row.job_id]).energy_series("TEMP") if row.job_id in states else []
        means[row.index] = statistics.fmean(value for _, value in series) if series else None
    return means


def inputs_job_id(sweep: Sweep) -> int | None:
    """The job the member uploads the sweep's inputs to: the first point's job, or its run's first step not yet
    sent (the step that holds a run's inputs)."""
    first = SweepPoint.objects.filter(sweep=sweep).order_by("index").values_list("job_id", "pipeline_id").first()
    if first is None:
        return None
    job_id, pipeline_id = first
    if job_id is not None:
        return job_id
    steps = Job.objects.filter(pipeline_id=pipeline_id, state__in=EDITABLE_STATES).order_by("position", "-pk")
    return steps.values_list("pk", flat=True).first()
