"""Cancelling jobs: the `scancel` argv.

Owns the one scancel form the portal uses (many ids in one call, after `--`). Must never know Django,
SSH or whose jobs they are.
"""

from __future__ import annotations

from clusters.slurm.identifiers import validate_job_id


def build_scancel_argv(*job_ids: str) -> list[str]:
    """`scancel -- ID...` (many jobs in one call); raises ValueError on no id or an id that is not digits."""
    if not job_ids:
        raise ValueError("scancel needs at least one job id")
    return ["scancel", "--", *(validate_job_id(job_id) for job_id in job_ids)]
