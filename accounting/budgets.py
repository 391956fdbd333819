"""Budgets in force and what they have left: the status of each (SU used in its current window, remaining,
fraction), what a job, run or sweep about to be submitted would use of it, and the submission gate.

Used SU is `accounting.selectors.su_used` over the window (one SUM per budget, over the usage rows' indexes).
A member's budgets are their own member budgets plus the budgets of the SLURM accounts they are charged to or
name in a job; what a submission would charge an account is its estimate (`job_estimate`) for the jobs naming
that account. Used counts finished, accounted jobs; the estimates of jobs sent and not accounted yet (queued,
running, or ended with their accounting to come) are held back as committed (`su_committed`), so that many
submissions at once cannot each fit in what is left.
Must never know pages or how a refusal is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounting.models import Budget
from accounting.selectors import su_committed, su_used
from accounting.windows import Window, phrase, window_of
from portal.errors import Conflict

ZERO = Decimal(0)
NO_ACCOUNT = ""  # the charges of jobs that name no account (SLURM's default account applies, unknown here)


class BudgetExceeded(Conflict):
    code = "BUDGET_EXCEEDED"
    user_message = "This would go over a hard budget."


def su_text(value: Decimal) -> str:
    return f"{value:.2f} SU"


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    window: Window
    used_su: Decimal  # accounted in the window
    committed_su: Decimal = ZERO  # estimated for jobs sent and not accounted yet

    @property
    def remaining_su(self) -> Decimal:
        return max(self.budget.limit_su - self.used_su - self.committed_su, ZERO)

    @property
    def fraction(self) -> Decimal:
        return self.used_su / self.budget.limit_su

    @property
    def phrase(self) -> str:
        return phrase(self.budget.period)


@dataclass(frozen=True)
class BudgetLine:
    """What a submission would use of one budget."""

    status: BudgetStatus
    estimate_su: Decimal

    @property
    def is_over(self) -> bool:
        status = self.status
        return status.used_su + status.committed_su + self.estimate_su > status.budget.limit_su

    @property
    def sentence(self) -> str:
        status = self.status
        held = f"; {su_text(status.committed_su)} held for jobs on their way" if status.committed_su else ""
        said = (
            f"This would use {su_text(self.estimate_su)} of {su_text(status.remaining_su)} left {status.phrase} "
            f"({status.budget.scope_label}{held})."
        )
        if not self.is_over:
            return said
        consequence = "it will be refused" if status.budget.is_hard else "it may still be submitted"
        return f"{said} That goes over the limit of {su_text(status.budget.limit_su)}: {consequence}."

    @property
    def details(self) -> dict[str, object]:
        status = self.status
        return {
            "budget_id": status.budget.pk,
            "scope": status.budget.scope_label,
            "limit_su": str(status.budget.limit_su),
            "used_su": str(status.used_su),
            "committed_su": str(status.committed_su),
            "estimate_su": str(self.estimate_su),
            "period": status.budget.period,
            "window_start": status.window.start.isoformat(),
            "window_end": status.window.end.isoformat(),
        }


def today() -> date:
    return timezone.localdate()


def status_of(budget: Budget, *, day: date | None = None) -> BudgetStatus:
    """The budget's current window, the SU charged in it and the SU held for jobs on their way (two queries)."""
    window = window_of(budget.period, day or today())
    whose = {"owner_id": budget.member_id} if budget.member_id is not None else {"account": budget.account}
    used = su_used(since=window.start, until=window.end, **whose)
    return BudgetStatus(budget=budget, window=window, used_su=used, committed_su=su_committed(**whose))


def budget_statuses(found: QuerySet[Budget]) -> list[BudgetStatus]:
    """The status of each budget (one SUM each), in creation order."""
    return [status_of(budget) for budget in found.select_related("member").order_by("pk")]


def budgets_in_force(*, member_id: int, accounts: Iterable[str]) -> QuerySet[Budget]:
    """The member's own budgets and those of these accounts."""
    named = [account for account in accounts if account]
    return Budget.objects.filter(Q(member_id=member_id) | Q(account__in=named)).select_related("member").order_by("pk")


def budget_outlook(*, member_id: int, charges: Mapping[str, Decimal], day: date | None = None) -> list[BudgetLine]:
    """What a submission would use of each budget in force: `charges` are its estimated SU by the account its
    jobs name (NO_ACCOUNT: none). A member budget takes them all, an account budget its own account's."""
    total = sum(charges.values(), ZERO)
    lines = []
    for budget in budgets_in_force(member_id=member_id, accounts=charges.keys()):
        estimate = total if budget.member_id is not None else charges.get(budget.account, ZERO)
        lines.append(BudgetLine(status=status_of(budget, day=day), estimate_su=estimate))
    return lines


def estimate_outlook(*, member_id: int, account: str | None, estimate_su: Decimal | None) -> list[BudgetLine]:
    """`budget_outlook` of one estimate charged to one account (None: the default); none without an estimate."""
    if estimate_su is None:
        return []
    return budget_outlook(member_id=member_id, charges={account or NO_ACCOUNT: estimate_su})


def check_budgets(*, member_id: int, charges: Mapping[str, Decimal], what: str) -> list[BudgetLine]:
    """The gate of a submission: the soft budgets it would go over (to note). Raises BudgetExceeded (with the
    limit, used, estimate and period) when it would go over a hard one."""
    over = [line for line in budget_outlook(member_id=member_id, charges=charges) if line.is_over]
    for line in over:
        if line.status.budget.is_hard:
            status = line.status
            raise BudgetExceeded(
                f"{what} would use {su_text(line.estimate_su)} but {su_text(status.remaining_su)} of "
                f"{su_text(status.budget.limit_su)} are left {status.phrase} ({status.budget.scope_label}): "
                "ask a lab admin to raise the budget, or ask for less time or fewer cores.",
                details=line.details,
            )
    return over
