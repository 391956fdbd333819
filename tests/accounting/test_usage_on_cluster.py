"""Usage accounting on the local SLURM cluster: real jobs finish through a real worker, their usage rows hold
what sacct itself says of them (ElapsedRaw, CPUTimeRAW, AllocTRES), asked by one sacct per batch, and the usage
page and API show them."""

from __future__ import annotations

import pytest

from accounting.models import JobUsage
from clusters.models import RemoteCommandRecord
from clusters.slurm import SACCT_USAGE_FORMAT, parse_alloc_tres
from tests.accounting.cluster_usage import run_jobs_to_their_end, sweep_as_beat_would
from tests.jobs.cluster_jobs import register, wait_for
from tests.local_cluster import localcluster

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_usage"


@pytest.fixture
def setup(celery_worker):
    return register((MEMBER,))


def sacct_rows(job_ids: list[str]) -> dict[str, list[str]]:
    """sacct's own answer for these ids, asked as the cluster user on the cluster host (not through the portal)."""
    out = localcluster(
        "sacct",
        MEMBER,
        "-X",
        "--parsable2",
        "--noheader",
        f"--format={SACCT_USAGE_FORMAT}",
        "--jobs=" + ",".join(job_ids),
    )
    return {line.split("|")[0]: line.split("|") for line in out.splitlines() if line.strip()}


def test_finished_jobs_get_sacct_figures_and_show_on_the_usage_page(setup) -> None:
    client = setup.client(setup.members[0])
    finished = run_jobs_to_their_end(client, setup.profile, cpus=(1, 2))
    job_ids = [job["id"] for job in finished]
    slurm_ids = [job["slurm_job_id"] for job in finished]

    def two_rows() -> list[JobUsage] | None:
        found = list(JobUsage.objects.filter(job_id__in=job_ids).select_related("job"))
        if len(found) == 2:
            return found
        sweep_as_beat_would()
        return None

    rows = wait_for(two_rows, timeout_s=90, what="two usage rows", every_s=2.0)
    truth = sacct_rows(slurm_ids)
    for usage in rows:
        row = truth[usage.job.slurm_job_id]
        tres = parse_alloc_tres(row[4])
        assert (usage.elapsed_s, usage.cpu_time_s) == (int(row[2]), int(row[3]))
        assert (usage.cpus, usage.memory_mb, usage.nodes, usage.gpus) == (tres.cpus, tres.memory_mb, tres.nodes, 0)
        assert (usage.partition, usage.account, usage.slurm_state) == (row[7], row[8], row[1])
        assert usage.is_from_portal_times is False
    assert sorted(usage.cpus for usage in rows) == [1, 2]
    # one sacct per batch: never one per job in a loop
    asked = [
        record.argv[-1].removeprefix("--jobs=").split(",")
        for record in RemoteCommandRecord.objects.filter(
            user=setup.members[0], argv__4=f"--format={SACCT_USAGE_FORMAT}"
        )
    ]
    assert sorted(job_id for ids in asked for job_id in ids) == sorted(slurm_ids)
    assert 1 <= len(asked) <= 2

    answer = client.get("/api/v1/usage?group_by=partition").json()
    total_core_hours = sum(usage.core_hours for usage in rows)
    assert answer["total"]["jobs"] == 2
    assert float(answer["total"]["core_hours"]) == pytest.approx(float(total_core_hours))
    page = client.get("/usage/?group_by=member").content.decode()
    assert f'<th scope="row">{setup.members[0].username}</th>' in page
    detail = client.get(f"/jobs/{job_ids[1]}/").content.decode()
    assert "SLURM's accounting:" in detail
