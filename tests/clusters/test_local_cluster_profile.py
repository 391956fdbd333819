"""The demo registers the local SLURM cluster as a profile with members' encrypted keys, once."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from clusters.models import ClusterCredential, ClusterProfile
from tests.factories import UserFactory
from tests.local_cluster import add_cluster_user, cluster_facts, host_key_line

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

CLUSTER_USER = "np_ci_alice"


def test_register_local_cluster_is_idempotent_and_stores_the_real_key() -> None:
    add_cluster_user(CLUSTER_USER)
    facts = cluster_facts()
    member = UserFactory(username=CLUSTER_USER)
    call_command("register_local_cluster", CLUSTER_USER, stdout=StringIO())
    profile = ClusterProfile.objects.get(slug="localcluster")
    profile.description = "edited by an admin"
    profile.save(update_fields=["description"])
    call_command("register_local_cluster", CLUSTER_USER, stdout=StringIO())

    profile.refresh_from_db()
    assert profile.description == "edited by an admin"
    assert (profile.login_host, profile.login_port) == (facts["LOCALCLUSTER_HOST"], int(facts["LOCALCLUSTER_PORT"]))
    assert profile.pinned_host_key_lines == (host_key_line(facts),)
    assert sorted(profile.partitions.values_list("name", "is_default", "max_walltime_s")) == [
        ("debug", False, 3600),
        ("normal", True, None),
    ]
    assert profile.launch_recipes.filter(kind="container").get().container_image
    credential = ClusterCredential.objects.get(user=member, profile=profile)
    key_text = (Path(facts["LOCALCLUSTER_KEYS_DIR"]) / CLUSTER_USER).read_text()
    assert credential.secret.reveal().strip() == key_text.strip()
    public = (Path(facts["LOCALCLUSTER_KEYS_DIR"]) / f"{CLUSTER_USER}.pub").read_text().split()[:2]
    assert credential.public_key.split()[:2] == public
