"""Usage rows in the admin: read-only (they are SLURM's figures; rates are edited on the cluster profile).
Budgets: lab admins (and superusers) add, change and delete them, and see each one's use in its window."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from accounting.budgets import status_of, su_text
from accounting.models import Budget, JobUsage


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


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ("__str__", "member", "account", "period", "limit_su", "is_hard", "used_now")
    list_filter = ("period", "is_hard")
    search_fields = ("member__username", "account", "note")
    fields = ("member", "account", "period", "limit_su", "is_hard", "note")
    list_select_related = ("member",)

    @admin.display(description="used in the current window")
    def used_now(self, budget: Budget) -> str:
        status = status_of(budget)
        return f"{su_text(status.used_su)} ({status.fraction:.0%})"

    def has_view_permission(self, request: HttpRequest, obj: Budget | None = None) -> bool:
        return request.user.is_lab_admin or request.user.is_superuser

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Budget | None = None) -> bool:
        return self.has_view_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Budget | None = None) -> bool:
        return self.has_view_permission(request)
