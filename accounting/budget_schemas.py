"""The API's shape of a budget line (what a previewed job, run or sweep would use of one budget), read from an
`accounting.budgets.BudgetLine` by dotted aliases.

Its own module: the preview schemas of templates and pipelines embed it, and must not import the usage schemas
(which embed theirs)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from ninja import Field, Schema


class BudgetLineOut(Schema):
    sentence: str = Field(description="e.g. 'This would use 12.00 SU of 40.00 SU left this month (member budget).'")
    is_over: bool = Field(description="The estimate goes over what is left.")
    is_hard: bool = Field(
        alias="status.budget.is_hard", description="Over a hard budget, the submission is refused with BUDGET_EXCEEDED."
    )
    budget_id: int = Field(alias="status.budget.pk")
    scope: str = Field(alias="status.budget.scope_label")
    period: str = Field(alias="status.budget.period")
    window_start: date = Field(alias="status.window.start")
    window_end: date = Field(alias="status.window.end")
    limit_su: Decimal = Field(alias="status.budget.limit_su")
    used_su: Decimal = Field(alias="status.used_su")
    committed_su: Decimal = Field(alias="status.committed_su", description="Held for jobs sent, not accounted yet.")
    remaining_su: Decimal = Field(alias="status.remaining_su")
    estimate_su: Decimal
