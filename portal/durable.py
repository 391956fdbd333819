"""`DurableTask`: the base of every task a service orders. A run holds its order or does nothing.

A run first claims its order (`portal.task_orders`): a duplicate delivery does nothing, a live run's
lease is renewed by a heartbeat, a run killed at any line is sent again by beat's sweep. What a run
ends with decides the order:
- success: DONE;
- a transient error (the cluster did not answer): postponed with backoff until the task's patience
  runs out (`waiting` tells what it worked on), then given up;
- PostgreSQL away: nothing recorded (it cannot be); the lease runs out and the sweep sends it again;
- anything else: `give_up` records it on what the task worked on, then GAVE_UP.
A task sent without an order (beat's ticks, a test's direct call) just runs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import Task
from celery.exceptions import Ignore
from django.db import InterfaceError, OperationalError, close_old_connections

from portal import task_orders
from portal.errors import ClusterUnreachable, PortalError

logger = logging.getLogger(__name__)


class DurableTask(Task):
    patience = timedelta(hours=1)  # how long a cluster that does not answer is waited for
    transient_errors: tuple[type[Exception], ...] = (ClusterUnreachable,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        held = task_orders.claim(self.request.id, patience=self.patience) if self.request.id else None
        if held is False:
            logger.info("task_duplicate_skipped", extra={"task": self.name, "task_id": self.request.id})
            return None
        if held is None:
            return self.run(*args, **kwargs)
        context_token = task_orders.current_claim.set(held)
        try:
            with task_orders.heartbeat(held):
                return self._run_holding(held, args, kwargs)
        finally:
            task_orders.current_claim.reset(context_token)

    def _run_holding(self, held: task_orders.Claim, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            result = self.run(*args, **kwargs)
        except task_orders.OrderLost:
            logger.warning("task_order_taken_over", extra={"task": self.name, "task_id": self.request.id})
            return None
        except self.transient_errors as exc:
            code = getattr(exc, "code", type(exc).__name__)
            retry_at = task_orders.postpone(held, f"{code}: {exc}")
            if retry_at is not None:
                self.waiting(args, error=exc, give_up_at=held.give_up_at)
                return None
            self._give_up_for_good(held, args, exc)
        except (OperationalError, InterfaceError) as exc:
            logger.warning("task_database_away", extra={"task": self.name, "error": str(exc)[:200]})
            close_old_connections()
            raise Ignore() from exc
        except Exception as exc:  # the top of a task: record it, then end
            self._give_up_for_good(held, args, exc)
        task_orders.close(held)
        return result

    def _give_up_for_good(self, held: task_orders.Claim, args: tuple[Any, ...], exc: Exception) -> None:
        self.give_up(args, exc)
        task_orders.close(held, gave_up=True, error=getattr(exc, "code", type(exc).__name__))
        raise Ignore() from exc

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        """A run without an order that failed (its order-holding runs never reach here)."""
        self.give_up(tuple(args), exc)

    # ---------------------------------------------------------------- what the task worked on

    def give_up(self, args: tuple[Any, ...], exc: Exception) -> None:
        """The task ended for good with `exc`; say so on what it worked on. Here: logged."""
        if isinstance(exc, PortalError):
            logger.warning("task_gave_up", extra={"task": self.name, "code": exc.code})
        else:
            logger.error("%s failed for %s", self.name, args, exc_info=(type(exc), exc, exc.__traceback__))

    def waiting(self, args: tuple[Any, ...], *, error: Exception, give_up_at: datetime) -> None:
        """A transient error postponed the task (it will be sent again); say so where a member looks."""

    def abandon(self, args: list[Any]) -> None:
        """Its runs kept dying (killed worker, out of memory): give up with a code saying so."""
        error = PortalError(
            "The portal's worker was interrupted several times doing this; it has been logged. Try again.",
            code="TASK_INTERRUPTED",
        )
        self.give_up(tuple(args), error)
