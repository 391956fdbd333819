"""The points of a sweep (jobs.sweep_points): grid, list, replicas, limits and refusals. Pure: no database."""

from __future__ import annotations

import pytest

from jobs.sweep_points import MAX_POINTS, SweepAxis, plan_sweep, point_label, replica_seeds
from portal.errors import InvalidInput

VARIABLES = frozenset({"temperature", "cutoff", "seed", "run_steps"})


def axis(name: str, *values: object) -> SweepAxis:
    return SweepAxis(name, tuple(values))


def refusal(**kwargs: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        plan_sweep(variables=VARIABLES, **kwargs)
    return caught.value


def test_a_grid_is_every_combination_the_first_axis_slowest() -> None:
    plan = plan_sweep(
        mode="grid", axes=[axis("temperature", 300, 310, 320), axis("cutoff", 10.0, 12.0)], variables=VARIABLES
    )
    assert plan.points == [
        {"temperature": 300, "cutoff": 10.0},
        {"temperature": 300, "cutoff": 12.0},
        {"temperature": 310, "cutoff": 10.0},
        {"temperature": 310, "cutoff": 12.0},
        {"temperature": 320, "cutoff": 10.0},
        {"temperature": 320, "cutoff": 12.0},
    ]
    assert plan.axes == [
        {"name": "temperature", "values": [300, 310, 320]},
        {"name": "cutoff", "values": [10.0, 12.0]},
    ]


def test_a_list_takes_the_axes_side_by_side() -> None:
    plan = plan_sweep(mode="list", axes=[axis("temperature", 300, 310), axis("seed", 7, 8)], variables=VARIABLES)
    assert plan.points == [{"temperature": 300, "seed": 7}, {"temperature": 310, "seed": 8}]


def test_a_list_of_unequal_axes_is_refused_with_each_length() -> None:
    error = refusal(mode="list", axes=[axis("temperature", 300, 310, 320), axis("seed", 7, 8)])
    assert error.code == "SWEEP_AXES_UNEQUAL"
    assert error.details == {"lengths": {"temperature": 3, "seed": 2}}


def test_replicas_differ_only_in_distinct_seeds_drawn_from_the_base_seed() -> None:
    plan = plan_sweep(mode="replicas", axes=[], variables=VARIABLES, replicas=5, base_seed=42)
    seeds = [point["seed"] for point in plan.points]
    assert [list(point) for point in plan.points] == [["seed"]] * 5
    assert len(set(seeds)) == 5
    assert all(1 <= seed <= 2_147_483_647 for seed in seeds)
    assert plan.axes == [{"name": "seed", "values": seeds, "base_seed": 42}]
    again = plan_sweep(mode="replicas", axes=[], variables=VARIABLES, replicas=5, base_seed=42)
    assert [point["seed"] for point in again.points] == seeds
    other = plan_sweep(mode="replicas", axes=[], variables=VARIABLES, replicas=5, base_seed=43)
    assert [point["seed"] for point in other.points] != seeds


def test_replica_seeds_stay_distinct_in_a_range_barely_large_enough() -> None:
    seeds = replica_seeds(1, 20, low=1, high=20)
    assert sorted(seeds) == list(range(1, 21))


def test_replica_seeds_are_pinned_values_a_later_version_must_keep() -> None:
    # computed once: the same base seed gives these seeds on any machine and any Python version
    assert replica_seeds(42, 3) == [483917757, 1175177741, 1571056896]
    assert replica_seeds(42, 1) == [483917757]  # more replicas add seeds, never change the first ones


def test_replicas_need_a_seed_variable() -> None:
    with pytest.raises(InvalidInput) as caught:
        plan_sweep(mode="replicas", axes=[], variables=frozenset({"temperature"}), replicas=3, base_seed=1)
    assert caught.value.code == "SWEEP_NO_SEED_VARIABLE"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"mode": "replicas", "axes": [], "replicas": None, "base_seed": 1}, "SWEEP_REPLICAS_INVALID"),
        ({"mode": "replicas", "axes": [axis("seed", 1)], "replicas": 2, "base_seed": 1}, "SWEEP_REPLICAS_INVALID"),
        ({"mode": "replicas", "axes": [], "replicas": 2, "base_seed": None}, "SWEEP_BASE_SEED_INVALID"),
        ({"mode": "replicas", "axes": [], "replicas": 2, "base_seed": 0}, "SWEEP_BASE_SEED_INVALID"),
        ({"mode": "grid", "axes": [axis("seed", 1)], "replicas": 2}, "SWEEP_REPLICAS_INVALID"),
        ({"mode": "spiral", "axes": [axis("seed", 1)]}, "SWEEP_MODE_UNKNOWN"),
        ({"mode": "grid", "axes": []}, "SWEEP_NO_AXES"),
        ({"mode": "grid", "axes": [axis("pressure", 1.0)]}, "SWEEP_AXIS_UNKNOWN"),
        ({"mode": "grid", "axes": [axis("seed")]}, "SWEEP_AXIS_EMPTY"),
        ({"mode": "grid", "axes": [axis("seed", 1), axis("seed", 2)]}, "SWEEP_AXIS_DUPLICATE"),
        ({"mode": "grid", "axes": [axis("seed", 1, 1)]}, "SWEEP_POINTS_REPEAT"),
        ({"mode": "list", "axes": [axis("seed", 1, 1), axis("cutoff", 10, 10)]}, "SWEEP_POINTS_REPEAT"),
        ({"mode": "replicas", "axes": [], "replicas": MAX_POINTS + 1, "base_seed": 1}, "SWEEP_TOO_MANY_POINTS"),
    ],
)
def test_refusals_have_their_code(kwargs: dict[str, object], code: str) -> None:
    assert refusal(**kwargs).code == code


def test_at_most_500_points_counted_before_any_point_is_made() -> None:
    axes = [axis("temperature", *range(100)), axis("cutoff", *range(100)), axis("run_steps", *range(100))]
    error = refusal(mode="grid", axes=axes)
    assert error.code == "SWEEP_TOO_MANY_POINTS"
    assert error.details == {"points": 1_000_000, "max_points": MAX_POINTS}
    exactly = plan_sweep(mode="grid", axes=[axis("temperature", *range(250)), axis("seed", 1, 2)], variables=VARIABLES)
    assert len(exactly.points) == MAX_POINTS


def test_a_points_label_lists_its_values_in_order() -> None:
    assert point_label({"temperature": 300, "cutoff": 10.0}) == "temperature=300, cutoff=10.0"
