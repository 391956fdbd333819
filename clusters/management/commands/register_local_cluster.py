"""`manage.py register_local_cluster`: the demo's local SLURM cluster as a profile, with members' keys."""

import subprocess
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from clusters.demo import LocalCluster, register_local_cluster

LOCALCLUSTER = Path(__file__).resolve().parents[3] / "scripts" / "localcluster" / "localcluster"


class Command(BaseCommand):
    help = "Register the local cluster (scripts/localcluster) and the given users' keys (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("usernames", nargs="+", help="portal users who have a same-named cluster user")

    def handle(self, *args: object, **options: object) -> None:
        result = subprocess.run([str(LOCALCLUSTER), "env"], capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise CommandError(f"localcluster env failed: {result.stderr.strip()}")
        facts = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        cluster = LocalCluster(
            host=facts["LOCALCLUSTER_HOST"],
            port=int(facts["LOCALCLUSTER_PORT"]),
            host_key_pub=Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]),
            keys_dir=Path(facts["LOCALCLUSTER_KEYS_DIR"]),
        )
        profile = register_local_cluster(cluster, list(options["usernames"]))
        self.stdout.write(f"cluster profile '{profile.name}' ({cluster.host}:{cluster.port}) is registered")
