"""When a job stops getting news from the cluster: the page's polls and last reads follow these two properties."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobs.models import Job, JobState

ENDED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "slurm_job_id", "finished_at", "settled", "awaits"),
    [
        (JobState.DRAFT, "", None, False, False),  # nothing was sent: nothing to wait for
        (JobState.READY, "", None, False, False),
        (JobState.SUBMITTING, "", None, False, True),  # sbatch under way: the id and the run are coming
        (JobState.RUNNING, "41", None, False, True),
        (JobState.COMPLETED, "41", None, False, True),  # ended; the results copy and the log's rest still to come
        (JobState.FAILED, "41", None, False, True),
        (JobState.COMPLETED, "41", ENDED, True, False),  # results back: settled
        (JobState.TIMEOUT, "41", ENDED, True, False),
        (JobState.CANCELLED, "", None, True, False),  # a draft cancelled: it never reached SLURM
        (JobState.FAILED, "", None, True, False),  # sbatch refused it
    ],
)
def test_a_job_is_settled_once_terminal_with_its_results_back_or_never_sent(
    state, slurm_job_id, finished_at, settled, awaits
) -> None:
    job = Job(state=state, slurm_job_id=slurm_job_id, finished_at=finished_at)
    assert (job.is_settled, job.awaits_cluster) == (settled, awaits)
