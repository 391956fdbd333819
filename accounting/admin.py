"""Usage rows in the admin: read-only (they are SLURM's figures; rates are edited on the cluster profile)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from accounting.models import JobUsage


@admin.register(JobUsage)
class JobUsageAdmin(admin.ModelAdmin):
    list_display = (
        "job",
        "owner",
        "profile",
        "partition",
        "slurm_state",
        "ended_at",
        "core_hours",
        "gpu_hours",
        "service_units",
        "is_from_portal_times",
    )
    list_filter = ("profile", "partition", "is_from_portal_times")
    search_fields = ("owner__username", "job__slurm_job_id", "account")
    date_hierarchy = "ended_at"
    list_select_related = ("job", "owner", "profile")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: JobUsage | None = None) -> bool:
        return False
