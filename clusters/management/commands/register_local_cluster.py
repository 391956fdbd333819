"""`manage.py register_local_cluster`: the demo's local SLURM cluster as a profile, with members' keys.

Where it is, its host key and the members' keys come from `scripts/localcluster/localcluster env`, or, where
that script is not at hand (inside a container of the compose test), from --host, --port, --host-key-pub and
--keys-dir. --slug and --name register it again as another profile (the scale-out bench's slow cluster is the
same cluster behind a delaying proxy).
"""

import subprocess
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from clusters.demo import LocalCluster, register_local_cluster

LOCALCLUSTER = Path(__file__).resolve().parents[3] / "scripts" / "localcluster" / "localcluster"


class Command(BaseCommand):
    help = "Register the local cluster (scripts/localcluster) and the given users' keys (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("usernames", nargs="+", help="portal users who have a same-named cluster user")
        parser.add_argument("--host", help="login host (default: from localcluster env)")
        parser.add_argument("--port", type=int, help="login port (default: from localcluster env)")
        parser.add_argument("--host-key-pub", type=Path, help="the sshd's public host key file")
        parser.add_argument("--keys-dir", type=Path, help="folder of the members' private keys, one file per name")
        parser.add_argument("--slug", default="localcluster")
        parser.add_argument("--name", default="Local SLURM cluster")

    def handle(self, *args: object, **options: object) -> None:
        given = [options["host"], options["port"], options["host_key_pub"], options["keys_dir"]]
        facts = {} if all(given) else self._facts()
        cluster = LocalCluster(
            host=options["host"] or facts["LOCALCLUSTER_HOST"],
            port=options["port"] or int(facts["LOCALCLUSTER_PORT"]),
            host_key_pub=options["host_key_pub"] or Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]),
            keys_dir=options["keys_dir"] or Path(facts["LOCALCLUSTER_KEYS_DIR"]),
            slug=options["slug"],
            name=options["name"],
        )
        profile = register_local_cluster(cluster, list(options["usernames"]))
        where = f"{cluster.host}:{cluster.port}"
        self.stdout.write(f"cluster profile '{profile.name}' ({where}) is registered: id {profile.pk}")

    def _facts(self) -> dict[str, str]:
        result = subprocess.run([str(LOCALCLUSTER), "env"], capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise CommandError(f"localcluster env failed: {result.stderr.strip()}")
        return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
