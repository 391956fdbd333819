"""The points of a sweep: which values each point runs with, from its mode and axes. Pure.

A grid is every combination of the axes' values (the first axis changes slowest); a list takes the
axes side by side (equal lengths); replicas are N points that differ only in their seed, drawn from a
base seed so that the same base seed always gives the same seeds. A sweep has at most MAX_POINTS
points and no two points alike. Every refusal is an InvalidInput with a stable code. Knows nothing of
templates, protocols or the database: the caller says which variables exist and the seed's range.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from portal.errors import InvalidInput

MAX_POINTS = 500
MODES = ("grid", "list", "replicas")
SEED_VARIABLE = "seed"
SEED_RANGE = (1, 2_147_483_647)  # NAMD's seed is a positive int32


@dataclass(frozen=True)
class SweepAxis:
    """One swept variable and the values it takes."""

    name: str
    values: tuple[Any, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values)}


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep runs: its axes as stored (replicas: the one `seed` axis, with its base seed) and its points."""

    axes: list[dict[str, Any]]
    points: list[dict[str, Any]]


def plan_sweep(
    *,
    mode: str,
    axes: Sequence[SweepAxis],
    variables: frozenset[str],
    replicas: int | None = None,
    base_seed: int | None = None,
    seed_range: tuple[int, int] = SEED_RANGE,
) -> SweepPlan:
    """The points of a sweep over `variables` (the names a point may set). Raises InvalidInput (SWEEP_*)."""
    if mode not in MODES:
        raise InvalidInput(f"Choose a sweep mode: {', '.join(MODES)}.", code="SWEEP_MODE_UNKNOWN")
    if mode == "replicas":
        return _replicas(axes, variables, replicas, base_seed, seed_range)
    if replicas is not None or base_seed is not None:
        raise InvalidInput(
            "Replicas and a base seed belong to the replicas mode; sweep the seed as an axis instead.",
            code="SWEEP_REPLICAS_INVALID",
        )
    _check_axes(axes, variables)
    names = [axis.name for axis in axes]
    if mode == "grid":
        count = math.prod(len(axis.values) for axis in axes)
        _check_count(count)
        combos = itertools.product(*(axis.values for axis in axes))
    else:
        lengths = {axis.name: len(axis.values) for axis in axes}
        if len(set(lengths.values())) > 1:
            said = ", ".join(f"{name} has {length}" for name, length in lengths.items())
            raise InvalidInput(
                f"In a list sweep every axis has as many values as the others ({said}).",
                code="SWEEP_AXES_UNEQUAL",
                details={"lengths": lengths},
            )
        _check_count(len(axes[0].values))
        combos = zip(*(axis.values for axis in axes), strict=True)
    points = [dict(zip(names, combo, strict=True)) for combo in combos]
    _check_distinct(points)
    return SweepPlan([axis.as_json() for axis in axes], points)


def _check_axes(axes: Sequence[SweepAxis], variables: frozenset[str]) -> None:
    if not axes:
        raise InvalidInput("Name at least one variable to sweep, with its values.", code="SWEEP_NO_AXES")
    seen: set[str] = set()
    for axis in axes:
        if axis.name in seen:
            raise InvalidInput(f"The variable {axis.name!r} is swept twice.", code="SWEEP_AXIS_DUPLICATE")
        seen.add(axis.name)
        if axis.name not in variables:
            raise InvalidInput(
                f"There is no variable {axis.name[:60]!r} to sweep.",
                code="SWEEP_AXIS_UNKNOWN",
                details={"axis": axis.name[:100], "variables": sorted(variables)},
            )
        if not axis.values:
            raise InvalidInput(f"Give {axis.name!r} at least one value.", code="SWEEP_AXIS_EMPTY")
        if len(axis.values) > MAX_POINTS:
            _check_count(len(axis.values))


def _check_count(count: int) -> None:
    if count > MAX_POINTS:
        raise InvalidInput(
            f"A sweep runs at most {MAX_POINTS} points; this one would run {count}.",
            code="SWEEP_TOO_MANY_POINTS",
            details={"points": count, "max_points": MAX_POINTS},
        )


def _check_distinct(points: list[dict[str, Any]]) -> None:
    """No two points alike: each would run the same job twice."""
    seen: dict[str, int] = {}
    for index, point in enumerate(points):
        key = json.dumps(point, sort_keys=True)
        if key in seen:
            raise InvalidInput(
                f"Points {seen[key]} and {index} have the same values; give each value once.",
                code="SWEEP_POINTS_REPEAT",
                details={"points": [seen[key], index]},
            )
        seen[key] = index


def _replicas(
    axes: Sequence[SweepAxis],
    variables: frozenset[str],
    replicas: int | None,
    base_seed: int | None,
    seed_range: tuple[int, int],
) -> SweepPlan:
    if axes:
        raise InvalidInput(
            "Replicas differ only in their seed: give their number, not axes.", code="SWEEP_REPLICAS_INVALID"
        )
    if SEED_VARIABLE not in variables:
        raise InvalidInput(
            "Replicas need a 'seed' variable to give each its own seed, and this has none.",
            code="SWEEP_NO_SEED_VARIABLE",
        )
    if replicas is None or replicas < 1:
        raise InvalidInput("Say how many replicas to run (at least 1).", code="SWEEP_REPLICAS_INVALID")
    _check_count(replicas)
    low, high = seed_range
    if base_seed is None or not low <= base_seed <= high:
        raise InvalidInput(
            f"Give a base seed from {low} to {high}: the replicas' seeds are drawn from it.",
            code="SWEEP_BASE_SEED_INVALID",
        )
    seeds = replica_seeds(base_seed, replicas, low=low, high=high)
    axis = {"name": SEED_VARIABLE, "values": seeds, "base_seed": base_seed}
    return SweepPlan([axis], [{SEED_VARIABLE: seed} for seed in seeds])


def replica_seeds(base_seed: int, count: int, *, low: int = SEED_RANGE[0], high: int = SEED_RANGE[1]) -> list[int]:
    """`count` distinct seeds in [low, high], the same for the same base seed on any machine (SHA-256 of
    "<base>:<index>:<try>", never Python's `random`, whose algorithms may change between versions)."""
    if high - low + 1 < count:
        raise InvalidInput(f"The seed's range holds fewer than {count} seeds.", code="SWEEP_REPLICAS_INVALID")
    seeds: list[int] = []
    taken: set[int] = set()
    for index in range(count):
        for attempt in itertools.count():
            digest = hashlib.sha256(f"{base_seed}:{index}:{attempt}".encode()).digest()
            seed = low + int.from_bytes(digest[:8], "big") % (high - low + 1)
            if seed not in taken:
                break
        taken.add(seed)
        seeds.append(seed)
    return seeds


def point_label(values: dict[str, Any]) -> str:
    """`temperature=300, cutoff=10`: a point's values for titles and tables."""
    return ", ".join(f"{name}={value}" for name, value in values.items())
