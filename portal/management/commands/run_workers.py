"""`manage.py run_workers`: the deployment's workers, one `celery worker` per queue (portal.worker_supervisor)."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from portal.worker_supervisor import WorkerSupervisor


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class Command(BaseCommand):
    help = (
        "Run one Celery worker for the default queue and one per cluster profile's queue, started and stopped "
        "as profiles come and go, restarted when they die; SIGTERM/SIGINT stops them warmly and exits 0."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency", type=positive, default=2, help="processes of the default queue's worker (database work)"
        )
        parser.add_argument(
            "--cluster-concurrency", type=positive, default=2, help="processes of each cluster's worker (SSH work)"
        )
        parser.add_argument("--loglevel", default="INFO", help="the workers' log level")
        parser.add_argument("--pool", default="", help="the workers' pool (default: Celery's, prefork)")

    def handle(self, *args: Any, **options: Any) -> None:
        supervisor = WorkerSupervisor(
            concurrency=options["concurrency"],
            cluster_concurrency=options["cluster_concurrency"],
            loglevel=options["loglevel"],
            pool=options["pool"],
        )
        raise SystemExit(supervisor.run())
