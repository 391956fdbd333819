"""Admin pages for cluster profiles (with partitions and launch recipes) and members' credentials.

Secrets never appear here: credential pages show who, where and the public key only.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from clusters.models import ClusterCredential, ClusterProfile, LaunchRecipe, Partition


class PartitionInline(admin.TabularInline):
    model = Partition
    extra = 0


class LaunchRecipeInline(admin.StackedInline):
    model = LaunchRecipe
    extra = 0


@admin.register(ClusterProfile)
class ClusterProfileAdmin(admin.ModelAdmin):
    list_display = ("name", "login_host", "login_port", "is_active", "sync_interval_s", "new_sessions_per_minute")
    list_filter = ("is_active",)
    search_fields = ("name", "login_host")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [PartitionInline, LaunchRecipeInline]
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "is_active")}),
        ("Login node", {"fields": ("login_host", "login_port", "pinned_host_keys", "pending_host_key")}),
        ("Per-user storage", {"fields": ("project_root_pattern", "scratch_root_pattern")}),
        ("Environment", {"fields": ("module_lines", "allowed_accounts", "allowed_qos")}),
        ("Cost", {"fields": ("su_per_core_hour", "su_per_gpu_hour")}),
        ("Polling and SSH budget", {"fields": ("sync_interval_s", "max_sessions_per_user", "new_sessions_per_minute")}),
    )
    readonly_fields = ("pending_host_key",)


@admin.register(ClusterCredential)
class ClusterCredentialAdmin(admin.ModelAdmin):
    list_display = ("user", "profile", "remote_username", "auth_kind", "last_test_ok", "last_tested_at")
    list_filter = ("profile", "auth_kind", "last_test_ok")
    search_fields = ("user__username", "remote_username")
    fields = ("user", "profile", "remote_username", "auth_kind", "public_key", "created_at", "updated_at",
              "last_tested_at", "last_test_ok", "last_test_summary")  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # members add their own credential; an admin never handles their secret
