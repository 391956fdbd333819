"""portal.worker_queues: the step of a plain worker follows every profile's queue as profiles come and go.

The consumer is a stand-in recording what the step asks of it (Celery's side); the profiles are real rows.
`tests/scaleout` proves the same with real worker processes.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from portal.queues import cluster_queue, default_queue
from portal.worker_queues import FollowClusterQueues, read_cluster_queues
from tests.factories import ClusterProfileFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the step reads with a connection of its own


class Consumer:
    """What the step uses of Celery's consumer: the selected queues, add and cancel, the loop's timer."""

    def __init__(self, own: set[str]) -> None:
        self.selected = set(own)
        self.calls: list[tuple[str, str]] = []
        self.app = SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(consume_from=self.selected)))
        self.hub = object()
        self.timer = SimpleNamespace(call_repeatedly=lambda secs, fun, args: SimpleNamespace(cancel=lambda: None))

    def add_task_queue(self, queue: str) -> None:
        self.selected.add(queue)
        self.calls.append(("add", queue))

    def cancel_task_queue(self, queue: str) -> None:
        self.selected.discard(queue)
        self.calls.append(("cancel", queue))


def started(consumer: Consumer, **options: Any) -> FollowClusterQueues:
    step = FollowClusterQueues(SimpleNamespace(), **options)
    step.start(consumer)
    return step


def test_a_plain_worker_follows_every_profiles_queue_and_keeps_up_with_changes() -> None:
    first, second = ClusterProfileFactory(), ClusterProfileFactory(is_active=False)
    consumer = Consumer(own={default_queue(), cluster_queue(second.pk)})  # as if `-Q default,<second's>`
    step = started(consumer)
    try:
        assert consumer.calls == [("add", cluster_queue(first.pk))]  # its own -Q queues are left as they are

        third, first_queue = ClusterProfileFactory(), cluster_queue(first.pk)
        first.delete()
        step.wanted = read_cluster_queues()  # what the reading thread does every POLL_S
        step.apply(consumer)

        assert consumer.calls[1:] == [("add", cluster_queue(third.pk)), ("cancel", first_queue)]
        assert consumer.selected == {default_queue(), cluster_queue(second.pk), cluster_queue(third.pk)}
    finally:
        step.shutdown(consumer)


def test_a_supervised_worker_consumes_only_its_own_queue() -> None:
    ClusterProfileFactory()
    consumer = Consumer(own={cluster_queue(1)})
    step = started(consumer, cluster_queues=False)  # `--no-cluster-queues`, as run_workers starts its children
    step.apply(consumer)
    assert consumer.calls == []
    assert consumer.selected == {cluster_queue(1)}
