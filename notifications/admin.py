"""Admin: the webhook host allow-list (editable), and the outbox and preferences to look at (read-only)."""

from __future__ import annotations

from django.contrib import admin

from notifications.models import Delivery, Notification, NotificationPreference, WebhookHostAllowance


@admin.register(WebhookHostAllowance)
class WebhookHostAllowanceAdmin(admin.ModelAdmin):
    list_display = ("host", "allow_http", "note", "created_at")
    search_fields = ("host", "note")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(ReadOnlyAdmin):
    # The webhook URL often carries its own secret (Slack's do): it is stored encrypted and the admin sees its host.
    list_display = ("user", "email_enabled", "webhook_host", "browser_enabled", "updated_at")
    fields = ("user", "email_enabled", "webhook_host", "browser_enabled", "events", "updated_at")
    readonly_fields = fields


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("channel", "state", "attempts", "next_attempt_at", "lease_until", "last_error_code", "sent_at")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("subject", "recipient", "event", "created_at")
    list_filter = ("event",)
    search_fields = ("subject", "idempotency_key")
    readonly_fields = ("recipient", "event", "idempotency_key", "subject", "text", "link", "fields", "created_at")
    inlines = [DeliveryInline]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("notification", "channel", "state", "attempts", "last_error_code", "next_attempt_at", "sent_at")
    list_filter = ("state", "channel", "last_error_code")
