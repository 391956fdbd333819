"""How every benchmark reports: a readable table, then one JSON object as the last line."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any


def time_calls(call: Callable[[], object], *, repeat: int, warmup: int = 20) -> list[float]:
    """Seconds taken by each of `repeat` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def summarize(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000,
        "per_s": len(ordered) / sum(ordered),
    }


def print_report(title: str, rows: dict[str, dict[str, float]], figures: dict[str, Any]) -> None:
    print(title)
    print(f"{'case':<34}{'median ms':>12}{'p95 ms':>12}{'per s':>12}")
    for name, row in rows.items():
        print(f"{name:<34}{row['median_ms']:>12.3f}{row['p95_ms']:>12.3f}{row['per_s']:>12.0f}")
    print(json.dumps(figures, sort_keys=True))
