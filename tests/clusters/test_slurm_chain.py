"""The dependency chain's script, run by a real bash against a stand-in `sbatch` that logs its argv.

The real SLURM runs it in tests/jobs/test_pipelines_on_cluster.py; here every branch (first step after a
queued job, a refusal part-way, hostile names) is driven directly and fast.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from clusters.file_tar import tar_of, untar_argv
from clusters.slurm import ChainStep, PreludeCommand, build_chain_script, build_relink_argv, parse_chain_output
from clusters.slurm.chain import STAGING_FAILED_EXIT

FAKE_SBATCH = """#!/bin/bash
printf '%s\\n' "$(printf '%q ' "$@")" >> "$SBATCH_LOG"
for arg in "$@"; do
  if [ "$arg" = "--job-name=$REFUSE_NAME" ]; then
    echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2
    exit 1
  fi
done
n=$(wc -l < "$SBATCH_LOG")
echo "$((100 + n));cluster"
"""


def run_chain(
    tmp_path: Path,
    steps: list[ChainStep],
    *,
    after: str | None = None,
    refuse: str = "",
    prelude: tuple[PreludeCommand, ...] = (),
) -> tuple:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    log = tmp_path / "sbatch.log"
    log.write_text("")
    argv, script = build_chain_script(steps, after=after, prelude=prelude)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_LOG": str(log), "REFUSE_NAME": refuse}
    result = subprocess.run(argv, input=script, capture_output=True, env=env, check=False, timeout=30)
    calls = [shlex.split(line) for line in log.read_text().splitlines()]
    return result, calls


STEPS = [ChainStep(f"/home/u/p/step{i}.sbatch", f"np-{i:012d}-step") for i in range(1, 4)]


def test_each_step_waits_for_the_one_before_and_the_ids_come_back(tmp_path: Path) -> None:
    result, calls = run_chain(tmp_path, STEPS)
    assert result.returncode == 0, result.stderr
    assert parse_chain_output(result.stdout.decode()) == {s.job_name: str(100 + i) for i, s in enumerate(STEPS, 1)}
    assert not any(arg.startswith("--dependency") for arg in calls[0])
    assert "--dependency=afterok:101" in calls[1]
    assert "--dependency=afterok:102" in calls[2]
    assert [call[-1] for call in calls] == [step.script_path for step in STEPS]
    assert all(call[call.index("--") + 1 :] == [call[-1]] for call in calls)  # the path is never an option


def test_the_first_step_waits_for_a_queued_job_when_given_one(tmp_path: Path) -> None:
    result, calls = run_chain(tmp_path, STEPS[:1], after="4242")
    assert result.returncode == 0
    assert "--dependency=afterok:4242" in calls[0]


def test_a_refusal_part_way_stops_the_chain_and_says_what_went_in(tmp_path: Path) -> None:
    result, calls = run_chain(tmp_path, STEPS, refuse=STEPS[1].job_name)
    assert result.returncode == 1
    assert parse_chain_output(result.stdout.decode()) == {STEPS[0].job_name: "101"}
    assert len(calls) == 2  # the third was never tried
    assert b"Invalid partition name" in result.stderr


def test_hostile_paths_stay_one_word(tmp_path: Path) -> None:
    path = "/home/u/p/$(touch pwned); echo x`id`.sbatch"
    result, calls = run_chain(tmp_path, [ChainStep(path, "np-000000000001-x")])
    assert result.returncode == 0
    assert calls[0][-1] == path
    assert not (Path.cwd() / "pwned").exists()


@pytest.mark.parametrize("name", ["a b", "x;rm", "-dash", ""])
def test_names_outside_the_allow_list_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not an allowed SLURM job name"):
        build_chain_script([ChainStep("/p/s.sbatch", name)])


@pytest.mark.parametrize("after", ["12a", "1;2", "$x"])
def test_an_after_id_that_is_no_id_is_refused(after: str) -> None:
    with pytest.raises(ValueError, match="not a SLURM job id"):
        build_chain_script(STEPS, after=after)


def test_an_empty_chain_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        build_chain_script([])


def test_relink_names_both_ids_and_refuses_others() -> None:
    assert build_relink_argv("17", "18") == ["scontrol", "update", "JobId=17", "Dependency=afterok:18"]
    with pytest.raises(ValueError, match="not a SLURM job id"):
        build_relink_argv("17", "18 Partition=x")


def test_the_prelude_makes_folders_unpacks_files_and_copies_them_before_the_first_sbatch(tmp_path: Path) -> None:
    project, scratch = tmp_path / "project", tmp_path / "scratch"
    hostile = "$(touch pwned) `id` 'quote' \\ NP_DATA\nNP_DATA\n"
    files = {"step1.namd": hostile.encode(), "namd/step2.namd": bytes(range(256)) * 300}
    prelude = (
        PreludeCommand(["mkdir", "-p", "--", str(project / "namd"), str(scratch)]),
        PreludeCommand(untar_argv(str(project)), tar_of(files)),
        PreludeCommand(["rsync", "-a", "--files-from=-", "--", f"{project}/", f"{scratch}/"], b"step1.namd\n"),
    )

    result, calls = run_chain(tmp_path, STEPS[:2], prelude=prelude)

    assert result.returncode == 0, result.stderr
    assert (project / "step1.namd").read_text() == hostile
    assert (project / "namd" / "step2.namd").read_bytes() == files["namd/step2.namd"]
    assert (scratch / "step1.namd").read_text() == hostile
    assert not (scratch / "namd").exists()
    assert len(calls) == 2
    assert not (Path.cwd() / "pwned").exists()
    assert not (tmp_path / "pwned").exists()


def test_a_failing_prelude_command_queues_nothing_and_says_so(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where a folder should be")
    prelude = (PreludeCommand(untar_argv(str(blocked / "below")), tar_of({"a.namd": b"x"})),)

    result, calls = run_chain(tmp_path, STEPS, prelude=prelude)

    assert result.returncode == STAGING_FAILED_EXIT
    assert b"np-staging-failed tar" in result.stderr
    assert calls == []
    assert parse_chain_output(result.stdout.decode()) == {}
