"""The demo's cluster: the local SLURM cluster registered as a profile, with the demo members' keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from accounts.models import User
from clusters.models import ClusterCredential, ClusterProfile, LaunchRecipe, Partition
from clusters.services import save_key_credential

LOCAL_PARTITIONS = (
    {"name": "normal", "is_default": True, "max_walltime_s": None, "max_nodes": 1, "cores_per_node": 2},
    {"name": "debug", "is_default": False, "max_walltime_s": 3600, "max_nodes": 1, "cores_per_node": 2},
)
LOCAL_RECIPES = (
    {
        "name": "CPU: namd2 under srun",
        "kind": LaunchRecipe.Kind.CPU,
        "command": "srun namd2 +p{cores} {config}",
        "is_default": True,
    },
    {
        "name": "GPU: namd3 GPU-resident",
        "kind": LaunchRecipe.Kind.GPU,
        "command": "namd3 +p{cores} +devices {devices} {config}",
    },
    {
        "name": "Container: namd3 in Apptainer",
        "kind": LaunchRecipe.Kind.CONTAINER,
        "command": "apptainer exec --nv {image} namd3 +p{cores} {config}",
        "container_image": "/opt/containers/namd_3.0.sif",
    },
)


@dataclass(frozen=True)
class LocalCluster:
    host: str
    port: int
    host_key_pub: Path
    keys_dir: Path
    slug: str = "localcluster"
    name: str = "Local SLURM cluster"


@transaction.atomic
def register_local_cluster(cluster: LocalCluster, usernames: list[str]) -> ClusterProfile:
    """Create what is missing; leave what exists (an admin may have edited it) as it is."""
    profile, _ = ClusterProfile.objects.get_or_create(
        slug=cluster.slug,
        defaults={
            "name": cluster.name,
            "description": "A one-node SLURM cluster on this machine (scripts/localcluster), for the demo.",
            "login_host": cluster.host,
            "login_port": cluster.port,
            "pinned_host_keys": " ".join(cluster.host_key_pub.read_text().split()[:2]),
            "allowed_accounts": ["lab"],
        },
    )
    for partition in LOCAL_PARTITIONS:
        Partition.objects.get_or_create(profile=profile, name=partition["name"], defaults=partition)
    for recipe in LOCAL_RECIPES:
        if not LaunchRecipe.objects.filter(profile=profile, name=recipe["name"]).exists():
            row = LaunchRecipe(profile=profile, **recipe)
            row.full_clean()  # the same rules as the admin's form (clusters.profile_rules)
            row.save()
    for user in User.objects.filter(username__in=usernames):
        if not ClusterCredential.objects.filter(user=user, profile=profile).exists():
            key_text = (cluster.keys_dir / user.username).read_text()
            save_key_credential(
                user=user, profile=profile, remote_username=user.username, private_key=key_text, passphrase=None
            )
    return profile
