"""Finding a member's jobs by name (the submit tag): the squeue and sacct argvs and their rows.

Owns the lookback and how rows named exactly the tag become job ids. Both tools are asked, as two parts
of one exec, each part's result read on its own. Must never know Django, SSH or how the parts reach the
cluster.
"""

from __future__ import annotations

from clusters.slurm.errors import StatusQueryFailed, stderr_excerpt
from clusters.slurm.identifiers import DERIVED_JOB_ID_PATTERN, JOB_ID_PATTERN, validate_job_name
from clusters.ssh import CommandResult

FIND_BY_NAME_LOOKBACK = "now-7days"


def build_find_by_name_argvs(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """squeue (own jobs still known to slurmctld) and sacct (the last 7 days) for one job name.

    Both are asked: a job that ended a moment ago is listed by sacct under the placeholder name
    "allocation" for about 2 s (22.05), while squeue still has its name for MinJobAge.
    Raises ValueError on a name outside the allow-list.
    """
    return build_find_by_names_argvs([name])


def build_find_by_names_argvs(names: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`build_find_by_name_argvs` for several names at once (both tools take a comma-separated list)."""
    if not names:
        raise ValueError("no job names")
    name_option = "--name=" + ",".join(validate_job_name(name) for name in names)
    return (
        ("squeue", "--me", "--noheader", "--states=all", name_option, "--format=%i|%j"),
        (
            "sacct",
            "-X",
            "--parsable2",
            "--noheader",
            name_option,
            "--starttime=" + FIND_BY_NAME_LOOKBACK,
            "--format=JobID,JobName,State",
        ),
    )


def job_ids_named(stdout: str, name: str) -> list[str]:
    """Ids in `id|name[|...]` rows named exactly `name`, ascending; a het/array row counts as its base id."""
    found: set[str] = set()
    for line in stdout.splitlines():
        fields = line.split("|")
        if len(fields) < 2 or fields[1] != name:
            continue
        job_id = fields[0].strip()
        derived = DERIVED_JOB_ID_PATTERN.fullmatch(job_id)
        if derived is not None:
            job_id = derived.group(1)
        if JOB_ID_PATTERN.fullmatch(job_id) is not None:
            found.add(job_id)
    return sorted(found, key=int)


def parse_find_by_name_output(squeue: CommandResult, sacct: CommandResult, name: str) -> list[str]:
    """Ids of the jobs named `name` in either result of `build_find_by_name_argvs`. Raises StatusQueryFailed."""
    return parse_find_by_names_output(squeue, sacct, [name])[name]


def parse_find_by_names_output(squeue: CommandResult, sacct: CommandResult, names: list[str]) -> dict[str, list[str]]:
    """Ids by name in either result of `build_find_by_names_argvs`. Raises StatusQueryFailed."""
    for tool, result in (("squeue", squeue), ("sacct", sacct)):
        if result.exit_code != 0 or result.stderr.strip():
            raise StatusQueryFailed(
                f"{tool} lookup by name failed",
                stderr_excerpt=stderr_excerpt(result.stderr),
                exit_code=result.exit_code,
            )
    return {
        name: sorted(set(job_ids_named(squeue.stdout, name)) | set(job_ids_named(sacct.stdout, name)), key=int)
        for name in names
    }
