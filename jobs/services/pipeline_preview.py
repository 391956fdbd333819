"""The preview of a pipeline run not yet created: every step's config, batch script and cost, their total, and
what it would use of the member's budgets (`accounting.budgets.budget_outlook`).

Each step is planned as `create_pipeline` would plan it (`plan_run`: the same values, resources, recipe and
file names) and previewed with `templates_app.services.preview_job`, so a step's problems come with the codes
creation would refuse it with. Writes nothing and contacts no cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from accounting.budgets import NO_ACCOUNT, BudgetLine, budget_outlook
from accounts.models import User
from clusters import access as cluster_access
from clusters import selectors as cluster_selectors
from jobs.services.pipelines import PipelineRequest, PlannedStep, access_runnable_protocol, plan_run
from portal.errors import InvalidInput, NotFound
from templates_app import batch_script
from templates_app.services import JobPreview, preview_job


@dataclass(frozen=True)
class StepPreview:
    step: PlannedStep
    preview: JobPreview | None  # None when the step could not be rendered at all (its recipe is missing)
    problems: list[dict[str, Any]]  # each with its code: the preview's, or why there is none


@dataclass(frozen=True)
class PipelinePreview:
    steps: list[StepPreview]
    problems: list[dict[str, Any]]  # what keeps the run from being planned at all (PROTOCOL_INVALID)
    total_cost: batch_script.CostEstimate | None  # the sum of the steps' estimates; None when no step has one
    steps_without_cost: int
    charges: dict[str, Decimal] = field(default_factory=dict)  # the estimated SU by the SLURM account named
    budget: list[BudgetLine] = field(default_factory=list)  # what the run would use of each budget in force

    @property
    def problem_count(self) -> int:
        return len(self.problems) + sum(len(step.problems) for step in self.steps)


def _total(costs: list[batch_script.CostEstimate]) -> batch_script.CostEstimate | None:
    if not costs:
        return None
    return batch_script.CostEstimate(
        core_hours=sum((cost.core_hours for cost in costs), Decimal(0)),
        gpu_hours=sum((cost.gpu_hours for cost in costs), Decimal(0)),
        service_units=sum((cost.service_units for cost in costs), Decimal(0)),
    )


def _protocol_refusal(error: InvalidInput) -> list[dict[str, Any]]:
    found = error.details.get("problems") or [error.user_message]
    return [
        {"code": error.code, "message": problem if isinstance(problem, str) else problem["problem"]}
        for problem in found
    ]


def preview_pipeline(*, user: User, request: PipelineRequest) -> PipelinePreview:
    """Every step of the run `request` would create, previewed. Raises NotFound (PROTOCOL_NOT_FOUND,
    CLUSTER_NOT_FOUND), Conflict (PROTOCOL_RETIRED)."""
    protocol = access_runnable_protocol(user=user, protocol_id=request.protocol_id)
    profile = cluster_access.access_profile(user=user, profile_id=request.cluster_id)
    try:
        planned = plan_run(protocol=protocol, request=request)
    except InvalidInput as exc:
        return PipelinePreview([], _protocol_refusal(exc), None, 0)
    login = cluster_selectors.remote_username(user=user, profile=profile)
    title = request.title.strip() or protocol.name
    steps = []
    for step in planned:
        try:
            recipe = cluster_access.access_launch_recipe(profile=profile, name=step.recipe_name)
        except NotFound as exc:
            steps.append(StepPreview(step, None, [{"code": exc.code, "message": exc.user_message, "line": None}]))
            continue
        preview = preview_job(
            version=step.version,
            values=step.values,
            profile=profile,
            recipe=recipe,
            resources=batch_script.Resources(**step.resources),
            title=f"{title}: {step.plan.label}",
            remote_username=login,
            config_filename=step.config_path,
            folder_slug=protocol.slug,
        )
        steps.append(StepPreview(step, preview, preview.problems))
    costs = [step.preview.cost for step in steps if step.preview is not None and step.preview.cost is not None]
    charges = _charges(steps)
    budget = budget_outlook(member_id=user.pk, charges=charges) if charges else []
    return PipelinePreview(steps, [], _total(costs), len(steps) - len(costs), charges, budget)


def _charges(steps: list[StepPreview]) -> dict[str, Decimal]:
    """The steps' estimated SU by the SLURM account their resources name (NO_ACCOUNT: none)."""
    charges: dict[str, Decimal] = {}
    for item in steps:
        if item.preview is not None and item.preview.cost is not None:
            account = str(item.step.resources.get("account") or NO_ACCOUNT)
            charges[account] = charges.get(account, Decimal(0)) + item.preview.cost.service_units
    return charges
