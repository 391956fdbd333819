"""Task orders: every task a service sends, kept in PostgreSQL until it is done.

An order is written in the same transaction as the state change that asks for it (the outbox), so
a request never loses its task to a broker that is down, and a task whose worker died is sent
again once its lease runs out (`portal.task_orders`).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class TaskOrder(models.Model):
    """One task to run until it is done: sent after the commit, claimed by the run that does it, swept by beat."""

    class State(models.TextChoices):
        QUEUED = "QUEUED", "Waiting for a worker"
        RUNNING = "RUNNING", "Running"
        DONE = "DONE", "Done"
        GAVE_UP = "GAVE_UP", "Gave up"

    task_id = models.CharField(max_length=64, unique=True)
    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    key = models.CharField(max_length=100, blank=True, help_text="At most one open order per key (e.g. finish:42).")
    queue = models.CharField(
        max_length=200,
        blank=True,
        help_text="The Celery queue it is sent to (portal.queues); empty: the default queue.",
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    lease_until = models.DateTimeField(help_text="Sent again after this unless done (or renewed by its run).")
    give_up_at = models.DateTimeField(help_text="Transient failures are retried until this.")
    claim_token = models.CharField(max_length=32, blank=True, help_text="The run holding the lease.")
    dispatches = models.PositiveIntegerField(default=0, help_text="Times it was sent to the broker.")
    runs = models.PositiveIntegerField(default=0, help_text="Times a worker started it.")
    interruptions = models.PositiveIntegerField(default=0, help_text="Runs that died without a word.")
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["lease_until"], name="task_order_due", condition=Q(done_at=None))]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=Q(done_at=None) & ~Q(key=""), name="task_order_one_open_per_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} {self.args} ({self.state})"
