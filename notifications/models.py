"""What a member wants to be told, what the portal has to tell them (the outbox) and how each channel got it.

`Notification` is one thing to tell one member, unique by its idempotency key (recipient, event, object);
`Delivery` is its sending on one channel (email, webhook), each with its own state, attempts, lease and
last error code. A webhook URL is a bearer credential (Slack's carry their secret in the path): it is stored
encrypted (`clusters.crypto`), and only its host is kept in the clear, for showing. No I/O here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q

from clusters.crypto import EncryptedSecretField, SealedSecret


class Event(models.TextChoices):
    JOB_COMPLETED = "job_completed", "A job completed"
    JOB_FAILED = "job_failed", "A job failed (failed, out of memory, node failure, timed out, lost, preempted)"
    JOB_STALLED = "job_stalled", "A running job's log stopped moving"
    JOB_CONTINUED = "job_continued", "A timed-out job continued itself"
    RUN_ENDED = "run_ended", "A pipeline run or a sweep ended (one digest for the whole run or sweep)"
    BUDGET_REACHED = "budget_reached", "A budget reached 80 % or 100 % of its limit"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class NotificationPreference(models.Model):
    """One member's channels and the events they want; a member without one is told nothing."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_pref")
    email_enabled = models.BooleanField(default=True, help_text="Mail to the member's email address.")
    webhook_url = EncryptedSecretField(
        null=True, blank=True, help_text="Slack-compatible: a POST of {'text': ...} plus structured fields. Encrypted."
    )
    webhook_host = models.CharField(
        max_length=253, blank=True, help_text="The webhook URL's host, kept on save: what is shown, never the URL."
    )
    browser_enabled = models.BooleanField(default=False, help_text="Show notifications on open portal pages.")
    events = models.JSONField(default=list, help_text="The events wanted (Event values).")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notifications of {self.user_id}"

    def save(self, *args, **kwargs) -> None:
        if not isinstance(self.webhook_url, SealedSecret):  # a URL just given (or none): its host, for showing
            self.webhook_host = webhook_host_of(self.webhook_url or "")
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "webhook_host"}
        super().save(*args, **kwargs)

    def wants(self, event: str) -> bool:
        return event in self.events

    @property
    def webhook_set(self) -> bool:
        return bool(self.webhook_url)

    def webhook_plaintext(self) -> str:
        """The URL to call ("" for none). Only the send reads it. Raises SecretDecryptionError."""
        if isinstance(self.webhook_url, SealedSecret):
            return self.webhook_url.reveal()
        return self.webhook_url or ""


def webhook_host_of(url: str) -> str:
    """The host a webhook URL names ("" for none or an unreadable one): the one part that may be shown."""
    try:
        return urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""


class WebhookHostAllowance(models.Model):
    """A host an admin allows webhooks to even though it is not a public https host (a lab's own chat server)."""

    host = models.CharField(max_length=253, unique=True, help_text="Exact host name or IP address, lower case.")
    allow_http = models.BooleanField(default=False, help_text="Also allow plain http to this host.")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.host

    def save(self, *args, **kwargs) -> None:
        self.host = self.host.strip().lower().strip("[]")
        super().save(*args, **kwargs)


class Notification(models.Model):
    """One thing to tell one member: written in the transaction of the state change that caused it."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=20, choices=Event.choices)
    idempotency_key = models.CharField(max_length=200, unique=True, help_text="recipient:event:object[:round]")
    subject = models.CharField(max_length=200)
    text = models.TextField(help_text="What happened and what to do next.")
    link = models.URLField(max_length=500, help_text="The page, as an absolute URL.")
    fields = models.JSONField(default=dict, help_text="Structured facts for webhooks (ids, state, error code).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["recipient", "-id"], name="notification_recent")]

    def __str__(self) -> str:
        return self.subject


class Delivery(models.Model):
    """A notification's sending on one channel: pending -> sending (a lease) -> sent, or failed for good."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(help_text="When a pending delivery is due.")
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A sending delivery's run is alive until.")
    claim_token = models.CharField(max_length=32, blank=True)
    last_error_code = models.CharField(max_length=60, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="delivery_one_per_channel"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_due", condition=Q(state="pending")),
            models.Index(fields=["lease_until"], name="delivery_leased", condition=Q(state="sending")),
        ]

    def __str__(self) -> str:
        return f"{self.channel} of {self.notification_id} ({self.state})"
