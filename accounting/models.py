"""What finished jobs used: one `JobUsage` row per job, from SLURM's accounting (or, when SLURM has none, the
portal's own times, flagged), with the service units charged at the cluster profile's rates of that time.

The rows carry their owner, cluster, partition and end time, so the usage pages group them in SQL without
touching jobs. Fields and constraints only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

USAGE_TOTALS = ("core_hours", "gpu_hours", "service_units")


class JobUsage(models.Model):
    """One finished job's accounting: elapsed and CPU time, what was allocated, what it was charged."""

    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="usage")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="job_usages")
    profile = models.ForeignKey("clusters.ClusterProfile", on_delete=models.PROTECT, related_name="job_usages")
    partition = models.CharField(max_length=64, blank=True)
    account = models.CharField(max_length=64, blank=True, help_text="The SLURM account charged.")
    slurm_state = models.CharField(max_length=64, blank=True, help_text="SLURM's State, verbatim.")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(help_text="When the job ended: the period it counts in.")
    elapsed_s = models.PositiveBigIntegerField(help_text="ElapsedRaw.")
    cpu_time_s = models.PositiveBigIntegerField(help_text="CPUTimeRAW: elapsed seconds times allocated cpus.")
    cpus = models.PositiveIntegerField(default=0)
    memory_mb = models.PositiveBigIntegerField(default=0)
    nodes = models.PositiveIntegerField(default=0)
    gpus = models.PositiveIntegerField(default=0)
    core_hours = models.DecimalField(max_digits=14, decimal_places=4)
    gpu_hours = models.DecimalField(max_digits=14, decimal_places=4)
    service_units = models.DecimalField(max_digits=16, decimal_places=4)
    su_per_core_hour = models.DecimalField(max_digits=10, decimal_places=4, help_text="The rate charged.")
    su_per_gpu_hour = models.DecimalField(max_digits=10, decimal_places=4, help_text="The rate charged.")
    is_from_portal_times = models.BooleanField(
        default=False,
        help_text="SLURM's accounting had no record of the job (purged): times and resources are the portal's.",
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # A member's usage over a period (and budgets' "SU used by a member"): an index-only scan.
            models.Index(
                fields=["owner", "ended_at"],
                name="usage_owner_period",
                include=["profile", "partition", *USAGE_TOTALS],
            ),
            # The lab's usage over a period.
            models.Index(
                fields=["ended_at"], name="usage_period", include=["owner", "profile", "partition", *USAGE_TOTALS]
            ),
            models.Index(fields=["account", "ended_at"], name="usage_account_period", include=["service_units"]),
        ]

    def __str__(self) -> str:
        return f"usage of job {self.job_id}"


class UsageMonth(models.Model):
    """The usage rows of one member on one cluster partition in one month, summed: what the usage pages read.

    Kept by `accounting.services.roll_up_usage` in the transaction that writes the rows (a bucket is always
    recomputed whole from them, so a re-run changes nothing). A page reads a few hundred of these, never the
    rows, whatever the number of jobs; only the partial months at a period's edges read rows.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_months")
    profile = models.ForeignKey("clusters.ClusterProfile", on_delete=models.CASCADE, related_name="usage_months")
    partition = models.CharField(max_length=64, blank=True)
    month = models.DateField(help_text="The month's first day, in the portal's time zone.")
    jobs = models.PositiveIntegerField()
    core_hours = models.DecimalField(max_digits=18, decimal_places=4)
    gpu_hours = models.DecimalField(max_digits=18, decimal_places=4)
    service_units = models.DecimalField(max_digits=20, decimal_places=4)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "profile", "partition", "month"], name="usage_month_bucket")
        ]
        indexes = [models.Index(fields=["month"], name="usage_month_period")]

    def __str__(self) -> str:
        return f"usage of {self.owner_id} on {self.profile_id}/{self.partition} in {self.month:%Y-%m}"


class BudgetPeriod(models.TextChoices):
    MONTH = "month", "Calendar month"
    QUARTER = "quarter", "Calendar quarter"
    YEAR = "year", "Calendar year"


class Budget(models.Model):
    """A limit on the SU one member, or one SLURM account (all its members), may be charged per calendar period.

    Hard: a submission whose estimate would go over is refused (BUDGET_EXCEEDED); soft: it goes, with a
    BUDGET_WARNING note on the job. The window is the current month, quarter or year (`accounting.windows`).
    """

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets"
    )
    account = models.CharField(max_length=64, blank=True, help_text="A SLURM account: every job charged to it.")
    period = models.CharField(max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    limit_su = models.DecimalField(max_digits=16, decimal_places=4, help_text="Service units per period.")
    is_hard = models.BooleanField(default=False, help_text="Refuse submissions that would go over (else warn).")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(member__isnull=False) & models.Q(account=""))
                | (models.Q(member__isnull=True) & ~models.Q(account="")),
                name="budget_member_or_account",
                violation_error_message="A budget is for one member or for one SLURM account, not both.",
            ),
            models.CheckConstraint(condition=models.Q(limit_su__gt=0), name="budget_limit_positive"),
        ]
        indexes = [models.Index(fields=["account"], name="budget_account")]

    def __str__(self) -> str:
        return f"{self.scope_label}: {self.limit_su} SU per {self.period}"

    @property
    def scope_label(self) -> str:
        return "member budget" if self.member_id is not None else f"account budget ({self.account})"
