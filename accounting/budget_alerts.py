"""Telling people a budget reached 80 % or 100 %: run in `record_usage`'s transaction, after the rows it wrote.

Each budget in force for the member (their own, and those of the accounts the new rows were charged to) whose
used fraction in its current window is at or over a threshold notifies the member (a member budget) and every
lab admin, through `notifications.services.notify` with the key `budget:<id>:<window start>:<percent>`: one
message per budget, window and threshold, however many usage runs follow. Must never know how a message is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.urls import reverse

from accounting.budgets import BudgetStatus, budgets_in_force, status_of, su_text
from accounts.models import User
from notifications.models import Event
from notifications.services import absolute_link, notify

THRESHOLDS = (Decimal("0.8"), Decimal("1.0"))


def _recipients(status: BudgetStatus) -> list[User]:
    admins = list(User.objects.filter(is_active=True, is_staff=True).order_by("pk"))
    member = status.budget.member
    if member is None or not member.is_active or member in admins:
        return admins
    return [member, *admins]


def _tell(status: BudgetStatus, threshold: Decimal) -> int:
    budget, percent = status.budget, int(threshold * 100)
    whose = f"{budget.member.username}'s" if budget.member is not None else f"the account {budget.account}'s"
    if threshold < 1:
        then = "Plan the rest of the period with what is left"
    elif budget.is_hard:
        then = "Submissions are refused until the next period"
    else:
        then = "Submissions still go, each with a warning"
    text = (
        f"{su_text(status.used_su)} of {whose} {su_text(budget.limit_su)} budget are used {status.phrase} "
        f"({status.window.start:%Y-%m-%d} to {status.window.end:%Y-%m-%d}): {percent} %. "
        f"{then}; a lab admin can raise the limit."
    )
    fields = {
        "budget_id": budget.pk,
        "threshold_percent": percent,
        "used_su": str(status.used_su),
        "limit_su": str(budget.limit_su),
        "window_start": status.window.start.isoformat(),
    }
    sent = 0
    for user in _recipients(status):
        sent += (
            notify(
                user,
                Event.BUDGET_REACHED,
                subject=f"Budget at {percent} %: {budget.scope_label}",
                text=text,
                link=absolute_link(reverse("frontend:usage")),
                key=f"budget:{budget.pk}:{status.window.start.isoformat()}:{percent}",
                fields=fields,
            )
            is not None
        )
    return sent


def notify_budget_thresholds(*, member_id: int, accounts: Iterable[str]) -> int:
    """Notify every threshold crossed by the budgets in force for the member and these accounts; messages written."""
    sent = 0
    for budget in budgets_in_force(member_id=member_id, accounts=accounts):
        status = status_of(budget)
        for threshold in THRESHOLDS:
            if status.fraction >= threshold:
                sent += _tell(status, threshold)
    return sent
