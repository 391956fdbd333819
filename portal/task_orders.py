"""The task-order outbox: place an order with the state change, send it, claim it, renew it, close it.

Every order moves QUEUED -> RUNNING -> DONE (or GAVE_UP), with conditional updates only:
- `place_order` writes it in the caller's transaction; the send goes after the commit and may fail
  (broker down): the order is still there and `dispatch_due_orders` sends it once its lease is out.
  An order keeps its queue (`portal.queues`: its cluster's, or the default), so every send of it
  goes to the same workers.
- `claim` is the first thing a run does: one run at a time holds an order (a duplicate delivery, or a
  copy sent while a slow run still renews its lease, finds it held or done and does nothing).
- A running order's lease is renewed by its run's heartbeat; a worker killed at any line stops
  renewing, and beat's sweep sends the order again (its task is idempotent) within a minute.
- `postpone` puts an order whose cluster did not answer back in the queue for later, until its
  patience runs out; then the task gives up and says so on what it worked on.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from portal.celery import app
from portal.models import TaskOrder
from portal.queues import queue_or_default

logger = logging.getLogger(__name__)

DISPATCH_GRACE = timedelta(seconds=90)  # sent but never started (broker lost it): sent again after this
LEASE = timedelta(seconds=45)  # a run that stops renewing is taken for dead after this
HEARTBEAT_S = 10.0
MAX_BACKOFF_S = 60  # a cluster that answers again is tried within a minute
MAX_INTERRUPTIONS = 5  # runs that died without a word: a task that kills its worker is given up
KEEP_DONE = timedelta(days=7)
SWEEP_BATCH = 200

# What a broker that is down raises from a send (kombu wraps most; the Redis client's own errors may leak).
BROKER_ERRORS = (KombuError, RedisError, OSError)


@dataclass(frozen=True)
class Claim:
    """The run that holds an order: its token is checked by every renewal and by the close."""

    order_id: int
    token: str
    runs: int
    give_up_at: datetime


def place_order(
    task_name: str, args: tuple[Any, ...], *, task_id: str, countdown: float = 0, key: str = "", queue: str = ""
) -> str:
    """Write the order and send it to `queue` (empty: the default queue) after the commit; its task id. An open
    order with the same key wins."""
    now = timezone.now()
    if key:
        open_task_id = TaskOrder.objects.filter(key=key, done_at=None).values_list("task_id", flat=True).first()
        if open_task_id:
            return open_task_id
    try:
        with transaction.atomic():  # a savepoint: of two concurrent orders with one key, the first is kept
            TaskOrder.objects.create(
                task_id=task_id,
                task_name=task_name,
                args=list(args),
                key=key,
                queue=queue,
                lease_until=now + timedelta(seconds=countdown) + DISPATCH_GRACE,
                give_up_at=now,  # set for real when a worker first claims it
            )
    except IntegrityError:
        open_task_id = TaskOrder.objects.filter(key=key, done_at=None).values_list("task_id", flat=True).first()
        if key and open_task_id:
            return open_task_id
        raise
    transaction.on_commit(lambda: _send_placed(task_name, args, task_id=task_id, countdown=countdown, queue=queue))
    return task_id


def _send_placed(task_name: str, args: tuple[Any, ...], *, task_id: str, countdown: float, queue: str) -> None:
    if not send(task_name, args, task_id=task_id, countdown=countdown, queue=queue):
        TaskOrder.objects.filter(task_id=task_id, state=TaskOrder.State.QUEUED).update(lease_until=timezone.now())


def send(
    task_name: str, args: tuple[Any, ...] | list[Any], *, task_id: str, countdown: float = 0, queue: str = ""
) -> bool:
    """Hand the task to the broker, on `queue` (empty: the default queue); False (logged) when the broker is
    down: the sweep sends it later."""
    try:
        app.send_task(
            task_name, args=tuple(args), task_id=task_id, countdown=countdown or None, queue=queue_or_default(queue)
        )
    except BROKER_ERRORS as exc:
        logger.warning("task_send_deferred", extra={"task": task_name, "task_id": task_id, "error": str(exc)[:200]})
        return False
    return True


def dispatch_due_orders(now: datetime | None = None) -> int:
    """Beat: send again every open order whose lease ran out (never sent, lost by the broker, run died)."""
    now = now or timezone.now()
    sent = 0
    with transaction.atomic():
        due = list(
            TaskOrder.objects.select_for_update(skip_locked=True)
            .filter(done_at=None, lease_until__lte=now)
            .order_by("lease_until")[:SWEEP_BATCH]
        )
        for order in due:
            was_running = order.state == TaskOrder.State.RUNNING
            interruptions = order.interruptions + was_running
            if interruptions >= MAX_INTERRUPTIONS:
                _abandon(order, now)
                continue
            TaskOrder.objects.filter(pk=order.pk).update(
                state=TaskOrder.State.QUEUED,
                claim_token="",
                interruptions=interruptions,
                dispatches=F("dispatches") + 1,
                lease_until=now + DISPATCH_GRACE,
            )
            if was_running:
                logger.warning("task_run_interrupted", extra={"task": order.task_name, "task_id": order.task_id})
            if not send(order.task_name, order.args, task_id=order.task_id, queue=order.queue):
                TaskOrder.objects.filter(pk=order.pk).update(lease_until=now)  # the broker is away: next sweep
                break
            sent += 1
    TaskOrder.objects.filter(done_at__lt=now - KEEP_DONE).delete()
    return sent


def _abandon(order: TaskOrder, now: datetime) -> None:
    """An order whose runs keep dying: its task says so on what it worked on, and it is closed."""
    logger.error("task_order_abandoned", extra={"task": order.task_name, "task_id": order.task_id})
    task = app.tasks.get(order.task_name)
    if task is not None and hasattr(task, "abandon"):
        task.abandon(order.args)
    TaskOrder.objects.filter(pk=order.pk).update(
        state=TaskOrder.State.GAVE_UP, done_at=now, last_error="interrupted too often"
    )


def claim(task_id: str, *, patience: timedelta) -> Claim | bool | None:
    """Take the order for this run: a Claim; None when the task is not an order; False when it is done or
    held by a live run (this delivery is a duplicate and must do nothing)."""
    now = timezone.now()
    token = secrets.token_hex(8)
    with transaction.atomic():
        order = TaskOrder.objects.select_for_update().filter(task_id=task_id).first()
        if order is None:
            return None
        is_held = order.state == TaskOrder.State.RUNNING and order.lease_until > now
        if order.done_at is not None or is_held:
            return False
        give_up_at = order.give_up_at if order.runs else now + patience
        order.runs += 1
        TaskOrder.objects.filter(pk=order.pk).update(
            state=TaskOrder.State.RUNNING,
            claim_token=token,
            runs=order.runs,
            give_up_at=give_up_at,
            lease_until=now + LEASE,
        )
    return Claim(order_id=order.pk, token=token, runs=order.runs, give_up_at=give_up_at)


def renew(held: Claim) -> bool:
    """Extend the lease; False when another run took the order over (this run must stop acting)."""
    return bool(
        TaskOrder.objects.filter(pk=held.order_id, claim_token=held.token, done_at=None).update(
            lease_until=timezone.now() + LEASE
        )
    )


def is_held(held: Claim) -> bool:
    """Still this run's order (checked before a side effect that must happen once, such as sbatch)."""
    return TaskOrder.objects.filter(
        pk=held.order_id, claim_token=held.token, done_at=None, lease_until__gt=timezone.now()
    ).exists()


def postpone(held: Claim, error: str) -> datetime | None:
    """Back in the queue for a later try (exponential backoff with jitter): when; None once patience is out."""
    now = timezone.now()
    delay_s = min(5 * 2 ** (held.runs - 1), MAX_BACKOFF_S) * random.uniform(0.6, 1.0)  # noqa: S311 - jitter, not a secret
    retry_at = now + timedelta(seconds=delay_s)
    if retry_at > held.give_up_at:
        return None
    TaskOrder.objects.filter(pk=held.order_id, claim_token=held.token).update(
        state=TaskOrder.State.QUEUED, claim_token="", lease_until=retry_at, last_error=error[:200]
    )
    return retry_at


def close(held: Claim, *, gave_up: bool = False, error: str = "") -> None:
    """The run is over: DONE, or GAVE_UP after its task recorded why."""
    state = TaskOrder.State.GAVE_UP if gave_up else TaskOrder.State.DONE
    TaskOrder.objects.filter(pk=held.order_id, claim_token=held.token).update(
        state=state, done_at=timezone.now(), last_error=error[:200]
    )


class OrderLost(Exception):
    """Another run took this run's order over (its lease ran out): stop before the next side effect."""


# The order the running task holds (None outside a task run, or for a task that is not an order).
current_claim: ContextVar[Claim | None] = ContextVar("current_claim", default=None)


def ensure_still_held() -> None:
    """Before a side effect that must happen once (sbatch): raise OrderLost unless this run holds its order."""
    held = current_claim.get()
    if held is not None and not is_held(held):
        raise OrderLost(f"order {held.order_id} was taken over")


@contextmanager
def heartbeat(held: Claim) -> Iterator[None]:
    """Renew the lease every few seconds while the body runs (a thread with its own DB connection)."""
    stop = threading.Event()

    def renew_until_stopped() -> None:
        try:
            while not stop.wait(HEARTBEAT_S):
                try:
                    if not renew(held):
                        return
                except DatabaseError:  # PostgreSQL away for a moment: try again at the next beat
                    connection.close()
        finally:
            connection.close()

    thread = threading.Thread(target=renew_until_stopped, name=f"order-{held.order_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=HEARTBEAT_S)
