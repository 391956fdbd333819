"""The admin's partition discovery: the `sinfo` argv and its rows as `PartitionInfo`.

Owns sinfo's format and how rows of unlike nodes merge into one partition. Must never know Django or
the portal's Partition model (the services convert).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from clusters.slurm.fields import split_row, squeue_elapsed_s

PARTITION_INFO_FORMAT = "%P|%c|%m|%G|%l|%D"
GPU_GRES_PATTERN = re.compile(r"(?:^|,)gpu(?::[A-Za-z0-9_.-]+)?:(\d+)")


@dataclass(frozen=True)
class PartitionInfo:
    name: str
    is_default: bool
    cores_per_node: int
    memory_per_node_mb: int | None
    gpus_per_node: int
    max_walltime_s: int | None  # None: no limit
    node_count: int


def build_partition_info_argv() -> list[str]:
    return ["sinfo", "--noheader", f"--format={PARTITION_INFO_FORMAT}"]


def _time_limit_s(field: str) -> int | None:
    """sinfo's %l: "infinite"/"UNLIMITED" (no limit) or SLURM's [D-]H:MM:SS / M:SS."""
    if field.strip().lower() in {"infinite", "unlimited", "n/a"}:
        return None
    return squeue_elapsed_s(field)


def parse_partition_info(stdout: str) -> list[PartitionInfo]:
    """One PartitionInfo per partition; rows of unlike nodes merge conservatively (least memory)."""
    merged: dict[str, PartitionInfo] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        fields = split_row(line, 6, "sinfo")
        if fields is None:
            continue
        name, cores, memory, gres, limit, nodes = fields
        gpus = sum(int(count) for count in GPU_GRES_PATTERN.findall(gres))
        info = PartitionInfo(
            name=name.rstrip("*"),
            is_default=name.endswith("*"),
            cores_per_node=int(cores.rstrip("+")) if cores.rstrip("+").isdigit() else 1,
            memory_per_node_mb=int(memory.rstrip("+")) if memory.rstrip("+").isdigit() else None,
            gpus_per_node=gpus,
            max_walltime_s=_time_limit_s(limit),
            node_count=int(nodes) if nodes.isdigit() else 0,
        )
        earlier = merged.get(info.name)
        if earlier is not None:
            memories = [m for m in (earlier.memory_per_node_mb, info.memory_per_node_mb) if m is not None]
            info = replace(
                info,
                cores_per_node=max(earlier.cores_per_node, info.cores_per_node),
                memory_per_node_mb=min(memories) if memories else None,
                gpus_per_node=max(earlier.gpus_per_node, info.gpus_per_node),
                node_count=earlier.node_count + info.node_count,
            )
        merged[info.name] = info
    return list(merged.values())
