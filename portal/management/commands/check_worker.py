"""`manage.py check_worker`: is a Celery worker there to run tasks?

Without options it sends a ping task through the broker and waits for a worker's answer (the local
services wait on it). With `--here` (the worker container's health check) it asks, over the broker's
control channel, whether the Celery workers of this machine answer: those of the `run_workers` supervisor that
wrote its node name here (hostnames `QUEUE@<node>`), or else any `NAME@<this host>`.
"""

import socket
import uuid

from celery.exceptions import TimeoutError as CeleryTimeout
from django.core.management.base import BaseCommand, CommandError
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from portal.celery import app
from portal.tasks import ping_task
from portal.worker_supervisor import NODE_FILE


class Command(BaseCommand):
    help = "Exit 0 when a Celery worker answers within the timeout (--here: this machine's workers)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")
        parser.add_argument("--here", action="store_true", help="only this machine's workers count")

    def handle(self, *args: object, **options: object) -> None:
        if options["here"]:
            self._check_here(options["timeout"])
            return
        payload = uuid.uuid4().hex
        result = ping_task.delay(payload)
        try:
            answer = result.get(timeout=options["timeout"])
        except CeleryTimeout as exc:
            result.revoke()
            raise CommandError("no Celery worker answered in time") from exc
        if answer["payload"] != payload:
            raise CommandError("a worker answered with the wrong payload")
        self.stdout.write(f"worker {answer['worker']} answered")

    def _check_here(self, timeout: float) -> None:
        node = NODE_FILE.read_text().strip() if NODE_FILE.exists() else socket.gethostname()
        suffix = f"@{node}"
        try:
            replies = app.control.ping(timeout=timeout)
        except (KombuError, RedisError, OSError) as exc:
            raise CommandError(f"the broker did not answer: {exc}") from exc
        here = sorted(name for reply in replies for name in reply if name.endswith(suffix))
        if not here:
            raise CommandError(f"no Celery worker of this machine ({suffix}) answered in time")
        self.stdout.write(f"{len(here)} worker(s) answered: {', '.join(here)}")
