"""The one permission rule for usage: whose usage rows a user may read.

Members read their own; a lab admin reads the lab's (everyone's) or their own; inactive users nothing.
Asking for the lab's usage without being a lab admin is Forbidden (USAGE_LAB_ONLY_ADMINS). Every usage
page, API call and export reads rows through `visible_usage`. A job's own usage goes with the job
(`jobs.access.access_job`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from django.db.models import QuerySet

from accounting.models import JobUsage, UsageMonth
from accounts.models import User
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
