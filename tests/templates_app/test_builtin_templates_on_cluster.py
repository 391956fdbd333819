"""Each built-in template, rendered with small values, runs to COMPLETED on the local SLURM cluster."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from clusters.gateway import MemberSession
from clusters.services import save_key_credential
from templates_app.builtin import load_builtin_templates
from templates_app.services import render_version
from tests.factories import ClusterProfileFactory, UserFactory
from tests.local_cluster import add_cluster_user, cluster_facts, host_key_line
from tests.templates_app.test_builtin_templates import FIXTURES, latest, values_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
CLUSTER_USER = "np_ci_alice"


@pytest.fixture
def session() -> MemberSession:
    add_cluster_user(CLUSTER_USER)
    facts = cluster_facts()
    profile = ClusterProfileFactory(
        slug="local-templates",
        login_host=facts["LOCALCLUSTER_HOST"],
        login_port=int(facts["LOCALCLUSTER_PORT"]),
        pinned_host_keys=host_key_line(facts),
    )
    key = (Path(facts["LOCALCLUSTER_KEYS_DIR"]) / CLUSTER_USER).read_text()
    credential = save_key_credential(
        user=UserFactory(username="template_runner"),
        profile=profile,
        remote_username=CLUSTER_USER,
        private_key=key,
        passphrase=None,
    )
    return MemberSession(credential)


def wait_until_finished(session: MemberSession, job_id: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = session.slurm().statuses([job_id]).get(job_id)
        if status is not None and status.is_terminal:
            return status.slurm_state.value
        time.sleep(1)
    pytest.fail(f"job {job_id} did not finish")


def test_every_builtin_template_completes_on_the_local_cluster(session: MemberSession, tmp_path: Path) -> None:
    load_builtin_templates()
    workdir = f"{session.roots[1]}/templates-{uuid.uuid4().hex[:8]}"
    session.run(["mkdir", "-m", "700", "--", workdir], check=True)
    try:
        for name in ("water.psf", "water.pdb", "par_water.prm"):
            session.upload(str(FIXTURES / name), f"{workdir}/{name}")
        for slug in ("vacuum-minimization", "npt-equilibration", "production-restart"):
            config = render_version(version=latest(slug), values=values_for(slug)).config
            (tmp_path / f"{slug}.namd").write_text(config)
            script = tmp_path / f"{slug}.sbatch"
            script.write_text(
                f"#!/bin/bash\n#SBATCH --output={workdir}/{slug}.log\n#SBATCH --time=00:05:00\n"
                f"export NAMD_STANDIN_STEPS_PER_SECOND=5000\nnamd2 +p1 {slug}.namd\n"
            )
            session.upload(str(tmp_path / f"{slug}.namd"), f"{workdir}/{slug}.namd")
            session.upload(str(script), f"{workdir}/{slug}.sbatch")
            job_id = session.slurm().submit(
                f"{workdir}/{slug}.sbatch", f"np-test-{slug}", extra_args=[f"--chdir={workdir}"]
            )
            state = wait_until_finished(session, job_id)
            log = session.run(["tail", "-n", "5", "--", f"{workdir}/{slug}.log"]).stdout
            assert state == "COMPLETED", f"{slug}: {state}\n{log}"
            assert "WallClock:" in log
    finally:
        session.run(["rm", "-rf", "--", workdir])
