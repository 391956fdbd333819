"""What a plain `celery -A portal worker` consumes: its own queues and every cluster profile's queue.

One worker (the local `scripts/services`, the tests' worker, a one-worker lab) must run every task, so
`FollowClusterQueues`, a consumer bootstep, adds a consumer for each profile's queue
(`portal.queues.cluster_queue`) at start, and re-reads the profile list every few seconds: a new
profile's queue is followed without a restart, a deleted profile's is let go. `manage.py run_workers`
starts its children with `--no-cluster-queues` (declared in portal/celery.py): each of them consumes
exactly the one queue it is given.

The profile list is read in a thread of its own (PostgreSQL away never stalls the consumer's event
loop) and closed after each read (a pool child forked meanwhile inherits no open connection); queues
are added and cancelled on the event loop, the only place kombu's channel may be used. Must never know
what a task does.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import bootsteps
from django.db import DatabaseError, connections

from portal.queues import cluster_queues

logger = logging.getLogger(__name__)

POLL_S = 2.0  # how soon a new profile's queue is followed
APPLY_S = 1.0


def read_cluster_queues() -> set[str] | None:
    """Every profile's queue; None when PostgreSQL did not answer (the followed set then stays as it is)."""
    try:
        return set(cluster_queues().values())
    except DatabaseError as exc:
        logger.warning("worker_queues_unread", extra={"error": str(exc)[:200]})
        return None
    finally:
        connections.close_all()


class FollowClusterQueues(bootsteps.StartStopStep):
    """Consume every cluster profile's queue besides the worker's own (`--no-cluster-queues` turns it off)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, cluster_queues: bool = True, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.is_on = cluster_queues
        self.followed: set[str] = set()  # the queues this step added (never the worker's own -Q queues)
        self.wanted: set[str] | None = None  # the last profile list read; None before the first read
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._apply_entry: Any = None

    def start(self, consumer: Any) -> None:
        if not self.is_on:
            return
        if self.wanted is None:
            self.wanted = read_cluster_queues()
        self.apply(consumer)
        if self._reader is None:
            self._reader = threading.Thread(target=self._read_until_stopped, name="cluster-queues", daemon=True)
            self._reader.start()
        if consumer.hub is None:  # no event loop (never with Redis): queues stay as they were at start
            logger.warning("worker_queues_not_followed", extra={"reason": "no event loop"})
            return
        self._apply_entry = consumer.timer.call_repeatedly(APPLY_S, self.apply, (consumer,))

    def stop(self, consumer: Any) -> None:
        """The consumer restarts (broker lost) or stops: the followed queues stay selected for its next start."""
        if self._apply_entry is not None:
            self._apply_entry.cancel()
            self._apply_entry = None

    def shutdown(self, consumer: Any) -> None:
        self.stop(consumer)
        self._stop.set()

    def _read_until_stopped(self) -> None:
        while not self._stop.wait(POLL_S):
            wanted = read_cluster_queues()
            if wanted is not None:
                self.wanted = wanted  # one assignment: the event loop reads either the old or the new set

    def apply(self, consumer: Any) -> None:
        """Follow the queues of new profiles and let go of deleted profiles' (on the event loop)."""
        wanted = self.wanted
        if wanted is None:
            return
        own = set(consumer.app.amqp.queues.consume_from) - self.followed
        for queue in sorted(wanted - self.followed - own):
            consumer.add_task_queue(queue)
            self.followed.add(queue)
            logger.info("worker_queue_followed", extra={"queue": queue})
        for queue in sorted(self.followed - wanted):
            consumer.cancel_task_queue(queue)
            self.followed.discard(queue)
            logger.info("worker_queue_left", extra={"queue": queue})
