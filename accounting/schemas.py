from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from ninja import Field, Schema

from templates_app.schemas import CostOut


class UsageGroupOut(Schema):
    label: str = Field(description="The member, the cluster, 'cluster / partition' or the month (YYYY-MM).")
    jobs: int
    core_hours: Decimal
    gpu_hours: Decimal
    service_units: Decimal


class UsageReportOut(Schema):
    scope: str = Field(description="mine, or lab (a lab admin's view of everyone's).")
    group_by: str
    since: date | None
    until: date | None
    groups: list[UsageGroupOut]
    total: UsageGroupOut


class JobUsageActualOut(Schema):
    slurm_state: str
    partition: str
    account: str
    started_at: datetime | None
    ended_at: datetime
    elapsed_s: int
    cpu_time_s: int
    cpus: int
    memory_mb: int
    nodes: int
    gpus: int
    core_hours: Decimal
    gpu_hours: Decimal
    service_units: Decimal
    su_per_core_hour: Decimal
    su_per_gpu_hour: Decimal
    is_from_portal_times: bool = Field(description="SLURM had no record (purged): the portal's own times.")


class JobUsageOut(Schema):
    job_id: int
    estimate: CostOut | None = Field(description="Before submission: every allocated core and GPU for the walltime.")
    actual: JobUsageActualOut | None = Field(description="SLURM's accounting once the job finished; null until then.")


class BudgetOut(Schema):
    id: int
    scope: str = Field(description="'member budget' or 'account budget (<account>)'.")
    member: str | None = Field(description="The member's username; null for an account budget.")
    account: str = Field(description="The SLURM account; empty for a member budget.")
    period: str = Field(description="month, quarter or year: the calendar window in force today.")
    window_start: date
    window_end: date = Field(description="Inclusive.")
    limit_su: Decimal
    is_hard: bool = Field(description="True: a submission that would go over is refused (BUDGET_EXCEEDED).")
    used_su: Decimal = Field(description="SU of finished, accounted jobs that ended in the window.")
    committed_su: Decimal = Field(description="Estimated SU of jobs sent to SLURM and not accounted yet.")
    remaining_su: Decimal
    fraction: float = Field(description="used / limit (1.0 = the limit reached).")
