"""What a SLURM job id and a job name may be, before either goes into an argv.

Owns the allow-lists (ids are ASCII digits, names a short safe alphabet), the form of derived ids
(array tasks `58_1`, het components `59+0`) and chunking many ids into commands. Must never know how
an argv reaches the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# One squeue + one sacct for up to 1000 ids (≈ 8 KB of argv): sacct's cost is mostly per call
# (≈ 55 ms for 200 ids, ≈ 65 ms for 500 on the local cluster), so fewer, larger calls win.
MAX_JOB_IDS_PER_COMMAND = 1000

JOB_ID_PATTERN = re.compile(r"[0-9]{1,12}", re.ASCII)
# sacct/squeue rows for array tasks (`58_1`, `58_[0-2]`) and het components (`59+0`).
DERIVED_JOB_ID_PATTERN = re.compile(r"([0-9]{1,12})[_+].*", re.ASCII)
JOB_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)


def validate_job_id(job_id: str) -> str:
    """Return the id if it is ASCII digits only; raises ValueError otherwise."""
    if not isinstance(job_id, str) or JOB_ID_PATTERN.fullmatch(job_id) is None:
        raise ValueError(f"not a SLURM job id: {job_id!r}")
    return job_id


def validate_job_ids(job_ids: Iterable[str]) -> tuple[str, ...]:
    """Validated ids, duplicates dropped, order kept; raises ValueError on a bad or missing id."""
    unique = tuple(dict.fromkeys(validate_job_id(job_id) for job_id in job_ids))
    if not unique:
        raise ValueError("no job ids")
    return unique


def validate_job_name(name: str) -> str:
    """Return the name if it passes the allow-list; raises ValueError otherwise."""
    if not isinstance(name, str) or JOB_NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(f"not an allowed SLURM job name: {name!r}")
    return name


def chunk_job_ids(job_ids: Iterable[str], size: int = MAX_JOB_IDS_PER_COMMAND) -> list[tuple[str, ...]]:
    """Validated, deduplicated ids in chunks of at most `size`, one status command each."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    unique = validate_job_ids(job_ids)
    return [unique[start : start + size] for start in range(0, len(unique), size)]
