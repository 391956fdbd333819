"""The SLURM batch script: resource checks, the job name, the script text and its cost, as pure functions.

Owns what goes into a batch script and the rule that every `#SBATCH` value, module line and launch
argument passes an allow-list first: user text reaches the script only as the sanitized job name.
Speaks frozen dataclasses only. Must never know Django, models, SSH, the file system or how the
script is uploaded and submitted; `jobs/services.py` converts models to these inputs.
"""

from __future__ import annotations

import re
import shlex
import uuid
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal
from typing import Literal

from clusters import profile_rules

LaunchKind = Literal["cpu", "gpu", "container"]
LAUNCH_KINDS: frozenset[str] = frozenset({"cpu", "gpu", "container"})

MIN_WALLTIME_S = 60
JOB_NAME_PREFIX = "np-"
JOB_NAME_SLUG_MAX_CHARS = 24
JOB_UUID_TAG_CHARS = 12

SLURM_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
SCRATCH_DIR_RE = re.compile(r"/[A-Za-z0-9_./-]*", re.ASCII)
CONFIG_FILENAME_RE = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}/)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}", re.ASCII)

_POSITIVE_INT = r"[1-9][0-9]{0,8}"
_SLURM_PATH = r"/[A-Za-z0-9_./-]*"
# The only `#SBATCH` options the script may carry, each with the shape its value must have.
SBATCH_VALUE_PATTERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.ASCII)
    for name, pattern in {
        "job-name": r"np-[0-9a-f]{12}(-[a-z0-9]+(-[a-z0-9]+)*)?",
        "comment": r"np:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "partition": SLURM_NAME_RE.pattern,
        "account": SLURM_NAME_RE.pattern,
        "qos": SLURM_NAME_RE.pattern,
        "nodes": _POSITIVE_INT,
        "ntasks": _POSITIVE_INT,
        "ntasks-per-node": _POSITIVE_INT,
        "cpus-per-task": _POSITIVE_INT,
        "mem": _POSITIVE_INT + "M",
        "gres": r"gpu:" + _POSITIVE_INT,
        "time": r"[0-9]{1,5}-[0-9]{2}:[0-9]{2}:[0-9]{2}",
        "chdir": _SLURM_PATH,
        "output": _SLURM_PATH + r"/slurm-%j\.out",
        "error": _SLURM_PATH + r"/slurm-%j\.err",
    }.items()
}


@dataclass(frozen=True)
class PartitionLimits:
    name: str
    max_walltime_s: int | None  # None: no limit
    max_nodes: int | None  # None: no limit
    cores_per_node: int
    memory_per_node_mb: int | None  # None: no limit
    gpus_per_node: int


@dataclass(frozen=True)
class LaunchSpec:
    kind: LaunchKind
    command: str  # with placeholders {cores}, {gpus}, {devices}, {image}, {config}
    module_lines: tuple[str, ...]
    container_image: str


@dataclass(frozen=True)
class ClusterSettings:
    profile_module_lines: tuple[str, ...]
    allowed_accounts: tuple[str, ...]  # empty: no account may be named, the user's default applies
    allowed_qos: tuple[str, ...]  # empty: no QOS may be named, the partition's default applies
    su_per_core_hour: Decimal
    su_per_gpu_hour: Decimal
    partitions: tuple[PartitionLimits, ...]


@dataclass(frozen=True)
class Resources:
    partition: str
    nodes: int
    ntasks: int  # tasks per node
    cpus_per_task: int
    memory_mb: int | None  # per node; None: the partition's default
    walltime_s: int
    gpus: int  # per node
    account: str | None
    qos: str | None


@dataclass(frozen=True)
class ScriptInputs:
    job_uuid: uuid.UUID
    job_title: str  # user text: reaches the script only through job_name()
    scratch_dir: str  # absolute, already confined to the user's scratch root by the caller
    config_filename: str  # e.g. "job.namd" or "namd/job.namd" (a stage's folder), relative to scratch_dir


@dataclass(frozen=True)
class ResourceProblem:
    code: str
    message: str


@dataclass(frozen=True)
class CostEstimate:
    core_hours: Decimal
    gpu_hours: Decimal
    service_units: Decimal


class BatchScriptError(Exception):
    """A batch script the portal refuses to write; `code` is stable, `problems` say why."""

    def __init__(self, code: str, problems: list[ResourceProblem]) -> None:
        super().__init__("; ".join(problem.message for problem in problems))
        self.code = code
        self.problems = problems


def _duration_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(part for part in parts if part) or "0 s"


def _count_problems(resources: Resources) -> list[ResourceProblem]:
    counts = {
        "nodes": resources.nodes,
        "tasks per node": resources.ntasks,
        "CPUs per task": resources.cpus_per_task,
    }
    problems = [
        ResourceProblem("RESOURCE_INVALID", f"The number of {label} must be at least 1; you asked for {value}.")
        for label, value in counts.items()
        if value < 1
    ]
    if resources.gpus < 0:
        problems.append(ResourceProblem("RESOURCE_INVALID", f"GPUs per node cannot be negative ({resources.gpus})."))
    if resources.memory_mb is not None and resources.memory_mb < 1:
        problems.append(
            ResourceProblem(
                "RESOURCE_INVALID", f"Memory must be at least 1 MB; you asked for {resources.memory_mb} MB."
            )
        )
    if resources.walltime_s < MIN_WALLTIME_S:
        problems.append(
            ResourceProblem(
                "RESOURCE_INVALID",
                f"The walltime must be at least 1 min; you asked for {_duration_text(max(resources.walltime_s, 0))}.",
            )
        )
    return problems


def _partition_problems(partition: PartitionLimits, resources: Resources) -> list[ResourceProblem]:
    problems = []
    name = partition.name
    if partition.max_walltime_s is not None and resources.walltime_s > partition.max_walltime_s:
        problems.append(
            ResourceProblem(
                "TIME_OVER_LIMIT",
                f"{name} allows at most {_duration_text(partition.max_walltime_s)}; "
                f"you asked for {_duration_text(resources.walltime_s)}.",
            )
        )
    if partition.max_nodes is not None and resources.nodes > partition.max_nodes:
        problems.append(
            ResourceProblem(
                "NODES_OVER_LIMIT",
                f"{name} allows at most {partition.max_nodes} nodes; you asked for {resources.nodes}.",
            )
        )
    cores_per_node = resources.ntasks * resources.cpus_per_task
    if cores_per_node > partition.cores_per_node:
        problems.append(
            ResourceProblem(
                "CORES_OVER_LIMIT",
                f"{name} has {partition.cores_per_node} cores per node; you asked for {cores_per_node} "
                f"({resources.ntasks} tasks x {resources.cpus_per_task} CPUs).",
            )
        )
    if partition.memory_per_node_mb is not None and (resources.memory_mb or 0) > partition.memory_per_node_mb:
        problems.append(
            ResourceProblem(
                "MEMORY_OVER_LIMIT",
                f"{name} allows at most {partition.memory_per_node_mb} MB per node; "
                f"you asked for {resources.memory_mb} MB.",
            )
        )
    if resources.gpus > partition.gpus_per_node:
        problems.append(
            ResourceProblem(
                "GPUS_UNAVAILABLE",
                f"{name} has {partition.gpus_per_node} GPUs per node; you asked for {resources.gpus}.",
            )
        )
    return problems


def _allow_list_problem(code: str, label: str, value: str | None, allowed: tuple[str, ...]) -> list[ResourceProblem]:
    if value is None or value in allowed:
        return []
    choices = ", ".join(allowed) if allowed else "none (leave it empty to use your default)"
    return [ResourceProblem(code, f"The {label} {value[:64]!r} is not allowed here; allowed: {choices}.")]


def check_resources(settings: ClusterSettings, resources: Resources) -> list[ResourceProblem]:
    """Every way the request breaks the cluster's limits; empty when it may be submitted."""
    problems = _count_problems(resources)
    partition = next((p for p in settings.partitions if p.name == resources.partition), None)
    if partition is None:
        known = ", ".join(p.name for p in settings.partitions) or "none"
        problems.append(
            ResourceProblem(
                "PARTITION_UNKNOWN", f"There is no partition {resources.partition[:64]!r}; choose one of: {known}."
            )
        )
    else:
        problems.extend(_partition_problems(partition, resources))
    problems.extend(_allow_list_problem("ACCOUNT_NOT_ALLOWED", "account", resources.account, settings.allowed_accounts))
    problems.extend(_allow_list_problem("QOS_NOT_ALLOWED", "QOS", resources.qos, settings.allowed_qos))
    return problems


def job_name(job_uuid: uuid.UUID, title: str) -> str:
    """`np-<12 hex of the uuid>-<slug of the title>`: the uuid tag finds a submission again."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower(), flags=re.ASCII).strip("-")
    slug = slug[:JOB_NAME_SLUG_MAX_CHARS].rstrip("-")
    tag = f"{JOB_NAME_PREFIX}{job_uuid.hex[:JOB_UUID_TAG_CHARS]}"
    return f"{tag}-{slug}" if slug else tag


def _slurm_time(walltime_s: int) -> str:
    days, rest = divmod(walltime_s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{seconds:02d}"


def _sbatch_line(option: str, value: str) -> str:
    if not SBATCH_VALUE_PATTERNS[option].fullmatch(value):
        raise BatchScriptError(
            "SBATCH_VALUE_INVALID",
            [ResourceProblem("SBATCH_VALUE_INVALID", f"The value for --{option} has characters SLURM must not see.")],
        )
    return f"#SBATCH --{option}={value}"


def _scratch_dir(scratch_dir: str) -> str:
    path = scratch_dir.rstrip("/")
    if not SCRATCH_DIR_RE.fullmatch(path) or ".." in path:
        raise ValueError("The scratch directory must be an absolute path of letters, digits, '_', '.', '-', '/'.")
    return path


def _sbatch_lines(resources: Resources, inputs: ScriptInputs, scratch_dir: str) -> list[str]:
    options: list[tuple[str, str]] = [
        ("job-name", job_name(inputs.job_uuid, inputs.job_title)),
        ("comment", f"np:{inputs.job_uuid}"),
        ("partition", resources.partition),
    ]
    if resources.account is not None:
        options.append(("account", resources.account))
    if resources.qos is not None:
        options.append(("qos", resources.qos))
    # --ntasks is the total; with --ntasks-per-node as its maximum SLURM places exactly ntasks on each node.
    options += [
        ("nodes", str(resources.nodes)),
        ("ntasks", str(resources.nodes * resources.ntasks)),
        ("ntasks-per-node", str(resources.ntasks)),
        ("cpus-per-task", str(resources.cpus_per_task)),
    ]
    if resources.memory_mb is not None:
        options.append(("mem", f"{resources.memory_mb}M"))
    if resources.gpus > 0:
        options.append(("gres", f"gpu:{resources.gpus}"))
    options += [
        ("time", _slurm_time(resources.walltime_s)),
        ("chdir", scratch_dir),
        ("output", f"{scratch_dir}/slurm-%j.out"),
        ("error", f"{scratch_dir}/slurm-%j.err"),
    ]
    return [_sbatch_line(option, value) for option, value in options]


def _module_lines(settings: ClusterSettings, launch: LaunchSpec) -> list[str]:
    lines = [line.strip() for line in (*settings.profile_module_lines, *launch.module_lines) if line.strip()]
    problems = [problem for line in lines for problem in profile_rules.module_line_problems(line)]
    if problems:
        raise BatchScriptError("MODULE_LINE_INVALID", [ResourceProblem("MODULE_LINE_INVALID", p) for p in problems])
    return lines


def _launch_refusal(message: str, code: str = "LAUNCH_COMMAND_INVALID") -> BatchScriptError:
    return BatchScriptError(code, [ResourceProblem(code, message)])


def _launch_line(launch: LaunchSpec, resources: Resources, config_filename: str) -> str:
    if launch.kind not in LAUNCH_KINDS:
        raise _launch_refusal(f"Unknown launch recipe kind {launch.kind[:20]!r}.")
    problems = profile_rules.launch_command_problems(launch.command)
    if problems:
        raise BatchScriptError(
            "LAUNCH_COMMAND_INVALID", [ResourceProblem("LAUNCH_COMMAND_INVALID", p) for p in problems]
        )
    names = profile_rules.PLACEHOLDER_RE.findall(launch.command)
    if (launch.kind == "gpu" or "devices" in names) and resources.gpus < 1:
        raise _launch_refusal("This launch recipe runs on GPUs; ask for at least one GPU per node.")
    if (launch.kind == "container" or "image" in names) and (
        not launch.container_image or profile_rules.container_image_problems(launch.container_image)
    ):
        raise _launch_refusal(
            "The container image must be an absolute path to a .sif file of letters, digits, '_', '.', '-', '/'.",
            code="CONTAINER_IMAGE_INVALID",
        )
    values = {
        "cores": str(resources.nodes * resources.ntasks * resources.cpus_per_task),
        "gpus": str(resources.gpus),
        "devices": ",".join(str(device) for device in range(resources.gpus)),
        "image": launch.container_image,
        "config": shlex.quote(config_filename),
    }
    return profile_rules.PLACEHOLDER_RE.sub(lambda match: values[match.group(1)], launch.command).strip()


def render_batch_script(
    settings: ClusterSettings, launch: LaunchSpec, resources: Resources, inputs: ScriptInputs
) -> str:
    """The batch script text; its exit code is NAMD's.

    Raises BatchScriptError (code: the first problem's code, or SBATCH_VALUE_INVALID, MODULE_LINE_INVALID,
    LAUNCH_COMMAND_INVALID, CONTAINER_IMAGE_INVALID) and ValueError for a scratch dir or config file name
    the caller should never have passed.
    """
    problems = check_resources(settings, resources)
    if problems:
        raise BatchScriptError(problems[0].code, problems)
    scratch_dir = _scratch_dir(inputs.scratch_dir)
    if not CONFIG_FILENAME_RE.fullmatch(inputs.config_filename):
        raise ValueError("The config file name must be a plain file name of letters, digits, '_', '.', '-'.")
    lines = [
        "#!/bin/bash",
        *_sbatch_lines(resources, inputs, scratch_dir),
        "set -euo pipefail",
        *_module_lines(settings, launch),
        f"cd -- {shlex.quote(scratch_dir)}",
        # Last command: with `set -e` and nothing after it, the script exits with NAMD's status.
        _launch_line(launch, resources, inputs.config_filename),
    ]
    return "\n".join(lines) + "\n"


def estimate_cost(settings: ClusterSettings, resources: Resources) -> CostEstimate:
    """The most the job can cost: every allocated core and GPU held for the whole walltime.

    SLURM bills what a job actually ran, which is at most its walltime, so this is an upper bound.
    Hours and service units are rounded up to 4 decimal places, never down. Check the resources first.
    """
    core_seconds = Decimal(resources.nodes * resources.ntasks * resources.cpus_per_task * resources.walltime_s)
    gpu_seconds = Decimal(resources.nodes * resources.gpus * resources.walltime_s)
    seconds_per_hour = Decimal(3600)
    step = Decimal("0.0001")
    service_units = (
        core_seconds * settings.su_per_core_hour + gpu_seconds * settings.su_per_gpu_hour
    ) / seconds_per_hour
    return CostEstimate(
        core_hours=(core_seconds / seconds_per_hour).quantize(step, rounding=ROUND_UP),
        gpu_hours=(gpu_seconds / seconds_per_hour).quantize(step, rounding=ROUND_UP),
        service_units=service_units.quantize(step, rounding=ROUND_UP),
    )
