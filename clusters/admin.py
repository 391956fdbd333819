"""Admin pages for cluster profiles (with partitions and launch recipes) and members' credentials.

Secrets never appear here: credential pages show who, where and the public key only.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from clusters import services, ssh
from clusters.models import (
    ClusterCredential,
    ClusterProfile,
    ClusterProfileChange,
    LaunchRecipe,
    Partition,
    RemoteCommandRecord,
)
from portal.enqueue import enqueue_on_commit
from portal.errors import PortalError
from portal.queues import cluster_queue


class PartitionInline(admin.TabularInline):
    model = Partition
    extra = 0


class LaunchRecipeInline(admin.StackedInline):
    """Read-only for staff who are not superusers: a recipe runs on members' accounts."""

    model = LaunchRecipe
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return services.may_edit_member_facing_fields(request.user)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return services.may_edit_member_facing_fields(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return services.may_edit_member_facing_fields(request.user)


class ClusterProfileChangeInline(admin.TabularInline):
    """Who changed a member-facing field, when, from what to what: read-only."""

    model = ClusterProfileChange
    extra = 0
    fields = ("changed_at", "changed_by", "field", "old_value", "new_value")
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "Changes of fields that run on members' accounts"

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ClusterProfile)
class ClusterProfileAdmin(admin.ModelAdmin):
    list_display = ("name", "login_host", "login_port", "is_active", "sync_interval_s", "new_sessions_per_minute")
    list_filter = ("is_active",)
    search_fields = ("name", "login_host")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [PartitionInline, LaunchRecipeInline, ClusterProfileChangeInline]
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "is_active")}),
        ("Login node", {"fields": ("login_host", "login_port", "pinned_host_keys", "pending_host_key")}),
        ("Per-user storage", {"fields": ("project_root_pattern", "scratch_root_pattern")}),
        ("Environment", {"fields": ("module_lines", "detected_namd_builds", "allowed_accounts", "allowed_qos")}),
        ("Cost", {"fields": ("su_per_core_hour", "su_per_gpu_hour", "su_rates_by_partition")}),
        ("Polling and SSH budget", {"fields": ("sync_interval_s", "max_sessions_per_user", "new_sessions_per_minute")}),
    )
    readonly_fields = ("pending_host_key", "pending_host_key_fingerprint", "detected_namd_builds")
    actions = ["fetch_host_key", "accept_host_key", "discover_partitions", "detect_namd_builds"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return services.may_edit_member_facing_fields(request.user)  # a new profile sets its login node

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        if services.may_edit_member_facing_fields(request.user):
            return fields
        return fields + tuple(f for f in services.MEMBER_FACING_PROFILE_FIELDS if f not in fields)

    def save_model(self, request: HttpRequest, obj: ClusterProfile, form: object, change: bool) -> None:
        services.save_profile(profile=obj, user=request.user)  # superuser-only fields, pins cleared, recorded

    def save_formset(self, request: HttpRequest, form: object, formset: object, change: bool) -> None:
        if formset.model is not LaunchRecipe:
            super().save_formset(request, form, formset, change)
            return
        before = {r.pk: r for r in LaunchRecipe.objects.filter(profile=form.instance)}
        super().save_formset(request, form, formset, change)
        after = {r.pk: r for r in LaunchRecipe.objects.filter(profile=form.instance)}
        changes: dict[str, tuple[object, object]] = {}
        for pk in before.keys() | after.keys():
            changes.update(services.recipe_changes(before.get(pk), after.get(pk)))
        services.record_profile_changes(profile=form.instance, user=request.user, changes=changes)

    @admin.display(description="Fingerprint of the pending key (compare with the cluster's published one)")
    def pending_host_key_fingerprint(self, profile: ClusterProfile) -> str:
        return ssh.fingerprint_sha256(profile.pending_host_key) if profile.pending_host_key else "—"

    @admin.action(description="First contact: fetch the login node's host key (to compare, then accept)")
    def fetch_host_key(self, request: HttpRequest, queryset: QuerySet[ClusterProfile]) -> None:
        for profile in queryset:
            enqueue_on_commit(
                "clusters.tasks.fetch_first_contact_host_key_task", profile.pk, queue=cluster_queue(profile.pk)
            )
        self.message_user(request, "Fetching host keys: reload in a moment and compare the fingerprint.")

    @admin.action(description="Accept the fetched host key (after comparing its fingerprint)")
    def accept_host_key(self, request: HttpRequest, queryset: QuerySet[ClusterProfile]) -> None:
        for profile in queryset:
            try:
                services.accept_pending_host_key(profile=profile, user=request.user)
                self.message_user(request, f"{profile}: host key pinned.")
            except PortalError as exc:
                self.message_user(request, f"{profile}: {exc.user_message}", level=messages.WARNING)

    @admin.action(description="Discover partitions and limits (with your own credential on the cluster)")
    def discover_partitions(self, request: HttpRequest, queryset: QuerySet[ClusterProfile]) -> None:
        for profile in queryset:
            enqueue_on_commit(
                "clusters.tasks.discover_partitions_task", profile.pk, request.user.pk, queue=cluster_queue(profile.pk)
            )
        self.message_user(request, "Discovering partitions: reload in a moment.")

    @admin.action(description="Detect the NAMD builds the cluster offers (module avail, binaries on PATH)")
    def detect_namd_builds(self, request: HttpRequest, queryset: QuerySet[ClusterProfile]) -> None:
        for profile in queryset:
            enqueue_on_commit(
                "clusters.tasks.detect_namd_builds_task", profile.pk, request.user.pk, queue=cluster_queue(profile.pk)
            )
        self.message_user(request, "Detecting NAMD builds: reload in a moment.")


@admin.register(ClusterCredential)
class ClusterCredentialAdmin(admin.ModelAdmin):
    list_display = ("user", "profile", "remote_username", "auth_kind", "last_test_ok", "last_tested_at")
    list_filter = ("profile", "auth_kind", "last_test_ok")
    search_fields = ("user__username", "remote_username")
    fields = (
        "user",
        "profile",
        "remote_username",
        "auth_kind",
        "public_key",
        "created_at",
        "updated_at",
        "last_tested_at",
        "last_test_ok",
        "last_test_summary",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # members add their own credential; an admin never handles their secret


@admin.register(RemoteCommandRecord)
class RemoteCommandRecordAdmin(admin.ModelAdmin):
    list_display = ("started_at", "user", "profile", "command", "exit_code", "error_code", "duration_ms")
    list_filter = ("profile", "error_code")
    search_fields = ("user__username", "task_id")
    date_hierarchy = "started_at"

    @admin.display(description="command")
    def command(self, record: RemoteCommandRecord) -> str:
        return " ".join(record.argv)[:120]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
