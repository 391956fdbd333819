"""Reading a NAMD log as it grows: progress, speed, energies and fatal errors, fed chunk by chunk.

The parser keeps a small, JSON-serialisable state (the byte offset read so far, a partial last
line, the energy column titles, a bounded energy series), so a sync can fetch only the bytes added
since the last one instead of the whole log. Pure: no Django, no SSH.
Accepts both the MB (real NAMD) and kB memory units of TIMING lines.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_ENERGY_ROWS = 2000  # older rows are thinned out, keeping the whole run's shape
TIMING_RE = re.compile(
    r"^TIMING: (?P<step>\d+)\s+CPU: [\d.e+-]+, [\d.e+-]+/step\s+Wall: [\d.e+-]+, (?P<s_per_step>[\d.e+-]+)/step, "
    r"(?P<hours>[\d.e+-]+) hours remaining, [\d.e+-]+ [kM]B of memory in use\.?$"
)
PERFORMANCE_RE = re.compile(r"^PERFORMANCE: (?P<step>\d+)\s+averaging (?P<ns_per_day>[\d.e+-]+) ns/day")
WALLCLOCK_RE = re.compile(r"^WallClock: (?P<wall>[\d.e+-]+)")
STEPS_RE = re.compile(r"^TCL: (?:Running|Minimizing) for (?P<steps>\d+) steps")
FIRST_STEP_RE = re.compile(r"^Info: FIRST TIMESTEP\s+(?P<step>\d+)")
TIMESTEP_RE = re.compile(r"^Info: TIMESTEP\s+(?P<fs>[\d.e+-]+)")


@dataclass
class LogProgress:
    """What the portal shows of a NAMD run; every field may still be unknown (None)."""

    offset: int = 0  # bytes of the log consumed so far
    partial_line: str = ""
    first_step: int | None = None
    total_steps: int = 0  # the sum of the run/minimize commands seen so far
    last_step: int | None = None  # the latest step of an ENERGY or TIMING line
    timestep_fs: float | None = None
    ns_per_day: float | None = None
    seconds_per_step: float | None = None
    hours_remaining: float | None = None
    wallclock_s: float | None = None  # set once NAMD ended normally
    timing_lines: int = 0
    energy_titles: list[str] = field(default_factory=list)
    energies: list[list[float]] = field(default_factory=list)
    fatal_errors: list[str] = field(default_factory=list)

    @property
    def has_finished(self) -> bool:
        return self.wallclock_s is not None

    @property
    def fraction_done(self) -> float | None:
        if self.last_step is None or not self.total_steps:
            return None
        return min(1.0, (self.last_step - (self.first_step or 0)) / self.total_steps)

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LogProgress:
        return cls(**state)

    def feed(self, chunk: bytes) -> None:
        """Consume the next bytes of the log (from `offset` on)."""
        self.offset += len(chunk)
        text = self.partial_line + chunk.decode("utf-8", errors="replace")
        lines = text.split("\n")
        self.partial_line = lines.pop()  # an unfinished line waits for the next chunk
        for line in lines:
            self._line(line.rstrip("\r"))

    def _line(self, line: str) -> None:
        if line.startswith("ENERGY:"):
            self._energy(line)
        elif line.startswith("ETITLE:"):
            self.energy_titles = line.split()[1:]
        elif match := TIMING_RE.match(line):
            self.timing_lines += 1
            self.last_step = max(self.last_step or 0, int(match["step"]))
            self.seconds_per_step = float(match["s_per_step"])
            self.hours_remaining = float(match["hours"])
            if self.timestep_fs and self.seconds_per_step > 0 and self.ns_per_day is None:
                self.ns_per_day = self.timestep_fs * 1e-6 * 86400 / self.seconds_per_step
        elif match := PERFORMANCE_RE.match(line):
            self.ns_per_day = float(match["ns_per_day"])
        elif match := STEPS_RE.match(line):
            self.total_steps += int(match["steps"])
        elif match := FIRST_STEP_RE.match(line):
            self.first_step = int(match["step"])
        elif match := TIMESTEP_RE.match(line):
            self.timestep_fs = float(match["fs"])
        elif match := WALLCLOCK_RE.match(line):
            self.wallclock_s = float(match["wall"])
            self.hours_remaining = 0.0
        elif "FATAL ERROR" in line and line.strip() not in self.fatal_errors and len(self.fatal_errors) < 20:
            self.fatal_errors.append(line.strip()[:500])

    def _energy(self, line: str) -> None:
        try:
            row = [float(value) for value in line.split()[1:]]
        except ValueError:
            return
        if not row:
            return
        self.last_step = max(self.last_step or 0, int(row[0]))
        self.energies.append(row)
        if len(self.energies) > MAX_ENERGY_ROWS:
            self.energies = self.energies[::2]  # halve the resolution, keep first to last

    def energy_series(self, column: str) -> list[tuple[int, float]]:
        """(step, value) pairs of one ETITLE column, e.g. "TOTAL"; empty when the column is unknown."""
        if column not in self.energy_titles:
            return []
        index = self.energy_titles.index(column)
        return [(int(row[0]), row[index]) for row in self.energies if len(row) > index]
