"""The preview of a sweep not yet created: how many points it runs, the first point rendered, and the cost.

The points are planned as `create_sweep` plans them (`plan_points`: the same SWEEP_* refusals), the first one
is previewed as its job (`templates_app.services.preview_job`) or its pipeline run (`preview_pipeline`) would
be made, and the sweep's cost estimate is the points times that one point's, set against the member's budgets
(`accounting.budgets.budget_outlook`). Writes nothing and contacts no cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from accounting.budgets import NO_ACCOUNT, BudgetLine, budget_outlook
from accounts.models import User
from clusters import access as cluster_access
from clusters import selectors as cluster_selectors
from jobs.services.pipeline_preview import PipelinePreview, preview_pipeline
from jobs.services.pipelines import PipelineRequest
from jobs.services.sweeps import SweepRequest, plan_request, point_title, sweep_protocol, sweep_template
from portal.errors import InvalidInput
from templates_app import batch_script
from templates_app.services import JobPreview, preview_job
from templates_app.specs import specs_from_json

POINTS_SHOWN = 10  # the first points listed by the preview


@dataclass(frozen=True)
class SweepPreview:
    points: int  # how many points the sweep runs; 0 when it cannot be planned
    first_points: list[dict[str, Any]]  # the swept values of the first POINTS_SHOWN points
    problems: list[dict[str, Any]]  # why the points cannot be planned (SWEEP_* codes)
    job: JobPreview | None  # a template sweep: the first point's job
    pipeline: PipelinePreview | None  # a protocol sweep: the first point's run, every step
    point_cost: batch_script.CostEstimate | None  # one point's estimate (a run's: the sum of its steps')
    budget: list[BudgetLine] = field(default_factory=list)  # what every point would use of each budget in force

    @property
    def total_cost(self) -> batch_script.CostEstimate | None:
        """The points times one point's estimate (every point asks for the same resources)."""
        if self.point_cost is None:
            return None
        return batch_script.CostEstimate(
            core_hours=self.point_cost.core_hours * self.points,
            gpu_hours=self.point_cost.gpu_hours * self.points,
            service_units=self.point_cost.service_units * self.points,
        )

    @property
    def more_points(self) -> int:
        return max(0, self.points - len(self.first_points))


def preview_sweep(*, user: User, request: SweepRequest) -> SweepPreview:
    """The sweep `request` would create: its points counted, the first previewed, the total cost estimated.
    Raises NotFound (TEMPLATE_NOT_FOUND, PROTOCOL_NOT_FOUND, CLUSTER_NOT_FOUND, RECIPE_NOT_FOUND), Conflict
    (TEMPLATE_RETIRED, PROTOCOL_RETIRED)."""
    if request.protocol_id is not None:
        protocol, specs = sweep_protocol(user, request.protocol_id)
        name = protocol.name
    else:
        template, version = sweep_template(user, request.template_id or 0)
        specs, name = specs_from_json(version.variables), template.name
    try:
        plan = plan_request(request, specs)
    except InvalidInput as exc:
        return SweepPreview(0, [], [{"code": exc.code, "message": exc.user_message}], None, None, None)
    first = plan.points[0]
    title = point_title(request.title.strip() or name, 0, first)
    values = {**request.values, **first}
    shown = plan.points[:POINTS_SHOWN]
    if request.protocol_id is not None:
        run_request = PipelineRequest(
            protocol_id=request.protocol_id,
            cluster_id=request.cluster_id,
            recipe=request.recipe,
            title=title,
            values=values,
            stage_values=request.stage_values,
            resources=request.resources,
        )
        run = preview_pipeline(user=user, request=run_request)
        budget = _outlook(user, run.charges, len(plan.points))
        return SweepPreview(len(plan.points), shown, [], None, run, run.total_cost, budget)
    profile = cluster_access.access_profile(user=user, profile_id=request.cluster_id)
    job = preview_job(
        version=version,
        values=values,
        profile=profile,
        recipe=cluster_access.access_launch_recipe(profile=profile, name=request.recipe),
        resources=request.resources,
        title=title,
        remote_username=cluster_selectors.remote_username(user=user, profile=profile),
    )
    point_charges = {request.resources.account or NO_ACCOUNT: job.cost.service_units} if job.cost else {}
    budget = _outlook(user, point_charges, len(plan.points))
    return SweepPreview(len(plan.points), shown, [], job, None, job.cost, budget)


def _outlook(user: User, point_charges: dict[str, Decimal], points: int) -> list[BudgetLine]:
    """Every point's charges (the same for each) against the member's budgets."""
    if not point_charges:
        return []
    return budget_outlook(member_id=user.pk, charges={key: su * points for key, su in point_charges.items()})
