"""Service units: the rates that apply on a partition and what a job's hours cost at them.

Pure: takes the profile's rate fields as values; a charge has the estimate's shape (`CostEstimate`).
Hours and SU are kept to 4 decimal places, rounded half up (what was used,
not an upper bound as the estimate is). Must never know models or the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from templates_app.batch_script import CostEstimate

STEP = Decimal("0.0001")
SECONDS_PER_HOUR = Decimal(3600)


@dataclass(frozen=True)
class Rates:
    su_per_core_hour: Decimal
    su_per_gpu_hour: Decimal


def rates_for(
    *,
    su_per_core_hour: Decimal,
    su_per_gpu_hour: Decimal,
    by_partition: Mapping[str, Mapping[str, object]],
    partition: str,
) -> Rates:
    """The profile's rates, with the partition's own where it has them."""
    own = by_partition.get(partition) or {}
    return Rates(
        su_per_core_hour=Decimal(str(own.get("su_per_core_hour", su_per_core_hour))),
        su_per_gpu_hour=Decimal(str(own.get("su_per_gpu_hour", su_per_gpu_hour))),
    )


def charge(*, cpu_time_s: int, gpu_time_s: int, rates: Rates) -> CostEstimate:
    """Core-hours (CPUTimeRAW), GPU-hours (GPUs times elapsed) and the SU they cost at `rates`."""
    core_hours = Decimal(cpu_time_s) / SECONDS_PER_HOUR
    gpu_hours = Decimal(gpu_time_s) / SECONDS_PER_HOUR
    service_units = core_hours * rates.su_per_core_hour + gpu_hours * rates.su_per_gpu_hour
    return CostEstimate(
        core_hours=core_hours.quantize(STEP, rounding=ROUND_HALF_UP),
        gpu_hours=gpu_hours.quantize(STEP, rounding=ROUND_HALF_UP),
        service_units=service_units.quantize(STEP, rounding=ROUND_HALF_UP),
    )
