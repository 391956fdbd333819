"""The budget gate of a submission: what the jobs about to be sent would charge, checked against the budgets in
force for their owner (`accounting.budgets.check_budgets`).

A hard budget they would go over refuses the submission (BUDGET_EXCEEDED, nothing changes); a soft one lets it
go and leaves a BUDGET_WARNING note, with the sentence, in the job's timeline. Touches no cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db.models import prefetch_related_objects

from accounting.budgets import NO_ACCOUNT, BudgetLine, check_budgets
from accounting.selectors import job_estimate
from jobs.models import Job
from jobs.transitions import note


def charges_of(jobs: Iterable[Job]) -> dict[str, Decimal]:
    """The jobs' estimated SU by the SLURM account they name (NO_ACCOUNT: none); a job with no estimate adds 0.
    Their profiles and partitions are read once for all of them (a sweep's hundreds of points)."""
    jobs = list(jobs)
    prefetch_related_objects(jobs, "profile__partitions")
    charges: dict[str, Decimal] = {}
    for job in jobs:
        estimate = job_estimate(job)
        if estimate is not None:
            account = str(job.resources.get("account") or NO_ACCOUNT)
            charges[account] = charges.get(account, Decimal(0)) + estimate.service_units
    return charges


def refuse_over_budget(jobs: list[Job], *, what: str) -> list[BudgetLine]:
    """The soft budgets these jobs would go over. Raises BudgetExceeded for a hard one."""
    return check_budgets(member_id=jobs[0].owner_id, charges=charges_of(jobs), what=what)


def check_submission_budget(jobs: list[Job], *, what: str, source: str, actor_id: int | None) -> None:
    """The gate, and a BUDGET_WARNING note on the first job per soft budget gone over. Raises BudgetExceeded."""
    for line in refuse_over_budget(jobs, what=what):
        note(jobs[0], "BUDGET_WARNING", source=source, actor_id=actor_id, detail=f"BUDGET_WARNING: {line.sentence}")
