"""`manage.py check_worker`: send a ping through the broker and wait for a worker's answer."""

import uuid

from celery.exceptions import TimeoutError as CeleryTimeout
from django.core.management.base import BaseCommand, CommandError

from portal.tasks import ping_task


class Command(BaseCommand):
    help = "Exit 0 when a Celery worker answers a ping through the broker within the timeout."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")

    def handle(self, *args: object, **options: object) -> None:
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
