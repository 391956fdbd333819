"""Jobs on the real local cluster through the real API and a real Celery worker: shared setup and waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from clusters.demo import LocalCluster, register_local_cluster
from clusters.gateway import MemberSession
from clusters.models import ClusterCredential, ClusterProfile
from templates_app.builtin import load_builtin_templates
from templates_app.models import Template
from tests.factories import UserFactory
from tests.local_cluster import add_cluster_user, cluster_facts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "namd"
WATER_FILES = ("water.psf", "water.pdb", "par_water.prm")
WATER = {"structure": "water.psf", "coordinates": "water.pdb", "parameters": "par_water.prm"}
CELL = {"cell_x": 30.0, "cell_y": 30.0, "cell_z": 30.0}
QUICK = {"output_energies": 10, "restart_every": 50, "dcd_every": 50, "minimize_steps": 50}
RECIPE = "CPU: namd2 under srun"


@dataclass
class ClusterSetup:
    profile: ClusterProfile
    members: list[User]

    def client(self, member: User) -> Client:
        client = Client()
        client.force_login(member)
        return client

    def session(self, member: User) -> MemberSession:
        return MemberSession(ClusterCredential.objects.get(user=member, profile=self.profile))


def register(usernames: tuple[str, ...]) -> ClusterSetup:
    """Cluster users, portal users of the same names, the local cluster profile with their keys, templates."""
    for name in usernames:
        add_cluster_user(name)
    facts = cluster_facts()
    members = [UserFactory(username=name) for name in usernames]
    profile = register_local_cluster(
        LocalCluster(
            host=facts["LOCALCLUSTER_HOST"],
            port=int(facts["LOCALCLUSTER_PORT"]),
            host_key_pub=Path(facts["LOCALCLUSTER_HOST_KEY_PUB"]),
            keys_dir=Path(facts["LOCALCLUSTER_KEYS_DIR"]),
        ),
        list(usernames),
    )
    load_builtin_templates()
    return ClusterSetup(profile=profile, members=members)


def template_id(slug: str) -> int:
    return Template.objects.get(slug=slug).pk


def create_job(
    client: Client,
    profile: ClusterProfile,
    *,
    values: dict[str, Any],
    walltime_s: int = 600,
    slug: str = "npt-equilibration",
    title: str = "water box",
    **extra: Any,
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/jobs",
        {
            "template_id": template_id(slug),
            "cluster_id": profile.pk,
            "recipe": RECIPE,
            "title": title,
            "values": values,
            "resources": {"partition": "debug", "walltime_s": walltime_s},
            **extra,
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def upload_inputs(client: Client, job_id: int, names: tuple[str, ...] = WATER_FILES) -> None:
    for name in names:
        with (FIXTURES / name).open("rb") as stream:
            response = client.post(f"/api/v1/jobs/{job_id}/inputs", {"file": stream})
        assert response.status_code == 202, response.content


def wait_for(check: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def job(client: Client, job_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.content
    return response.json()


def wait_for_state(client: Client, job_id: int, states: set[str], *, timeout_s: float = 120) -> dict[str, Any]:
    """Ask for a refresh (the worker syncs) until the job reaches one of `states`."""

    def reached() -> dict[str, Any] | None:
        current = job(client, job_id)
        if current["state"] in states:
            return current
        if current["slurm_job_id"]:
            client.post(f"/api/v1/jobs/{job_id}/refresh")
        return None

    return wait_for(reached, timeout_s=timeout_s, what=f"job {job_id} to reach {sorted(states)}", every_s=1.0)


def wait_until_finished(client: Client, job_id: int, *, timeout_s: float = 120) -> dict[str, Any]:
    """Until the results are copied back (finished_at set) after a terminal state."""
    return wait_for(
        lambda: (j := job(client, job_id))["finished_at"] and j,
        timeout_s=timeout_s,
        what=f"job {job_id} to be finished",
    )
