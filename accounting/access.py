"""The one permission rule for usage: whose usage rows a user may read.

Members read their own; a lab admin reads the lab's (everyone's) or their own; inactive users nothing.
Asking for the lab's usage without being a lab admin is Forbidden (USAGE_LAB_ONLY_ADMINS). Every usage
page, API call and export reads rows through `visible_usage`. A job's own usage goes with the job
(`jobs.access.access_job`). Budgets: a member sees the ones that apply to them (their own, and those of the
SLURM accounts they use), a lab admin all (`visible_budgets`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from django.db.models import Q, QuerySet

from accounting.models import Budget, JobUsage, UsageMonth
from accounts.models import User
from jobs.models import Job
from portal.errors import Forbidden

UsageModel = TypeVar("UsageModel", JobUsage, UsageMonth)


class UsageScope(StrEnum):
    MINE = "mine"
    LAB = "lab"


def default_scope(user: User) -> UsageScope:
    """What a usage page or call shows unless asked: the lab's for a lab admin, else one's own."""
    return UsageScope.LAB if user.is_lab_admin else UsageScope.MINE


def visible_usage(
    user: User, *, scope: UsageScope = UsageScope.MINE, model: type[UsageModel] = JobUsage
) -> QuerySet[UsageModel]:
    """The usage rows (or their monthly sums, `model=UsageMonth`) `user` may read in `scope`.

    Raises Forbidden (USAGE_LAB_ONLY_ADMINS) for the lab's.
    """
    if not user.is_active:
        return model.objects.none()
    if scope == UsageScope.LAB:
        if not user.is_lab_admin:
            raise Forbidden("Only lab admins see the lab's usage.", code="USAGE_LAB_ONLY_ADMINS")
        return model.objects.all()
    return model.objects.filter(owner=user)


def member_accounts(member_id: int) -> set[str]:
    """The SLURM accounts a member was charged to or named in a job (two DISTINCT queries)."""
    charged = JobUsage.objects.filter(owner_id=member_id).exclude(account="").values_list("account", flat=True)
    named = (
        Job.objects.filter(owner_id=member_id, resources__account__isnull=False)
        .exclude(resources__account="")
        .values_list("resources__account", flat=True)
    )
    return {str(account) for account in [*charged.order_by().distinct(), *named.order_by().distinct()] if account}


def visible_budgets(user: User) -> QuerySet[Budget]:
    """The budgets `user` may read: a lab admin all, a member those that apply to them, inactive none."""
    if not user.is_active:
        return Budget.objects.none()
    if user.is_lab_admin:
        return Budget.objects.all()
    return Budget.objects.filter(Q(member=user) | Q(account__in=member_accounts(user.pk)))
