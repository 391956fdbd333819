"""Reading a NAMD log as it grows: progress, speed, energies and fatal errors, fed chunk by chunk.

The parser keeps a small, JSON-serialisable state (the byte offset read so far, a partial last
line, the energy column titles, a bounded energy series), so a sync can fetch only the bytes added
since the last one instead of the whole log. Pure: no Django, no SSH.
The state stays small whatever the log holds: at most MAX_ENERGY_COLUMNS columns and MAX_ENERGY_VALUES
numbers are kept (≈ 160 KB of JSON at worst), every line and message is capped, and an ETITLE line costs
the same whatever came before it (the rows kept are never rewritten when the columns change).
It reads the shapes of NAMD 2.x and 3.x logs, CPU and GPU builds, and must never raise: logs come
from other labs' builds, may be cut anywhere while NAMD writes, and may hold junk (a zero-filled
block after a node crash). A line it does not know is skipped. The state never holds NaN, infinity
or NUL characters, which PostgreSQL's jsonb rejects.
Accepts both the MB (real NAMD) and kB memory units of TIMING lines.
"""

from __future__ import annotations

import codecs
import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

MAX_ENERGY_COLUMNS = 64  # columns kept (NAMD prints at most ~25); those of a wider ETITLE line are dropped
MAX_TITLE_CHARS = 32  # NAMD's titles are short ("POTENTIAL"); an ETITLE line with a longer one is not NAMD's
MAX_SERIES_POINTS = 2000  # rows kept: over it, every other row is dropped, keeping the whole run's shape
MAX_ENERGY_VALUES = 6144  # rows x columns kept: 307 rows of NAMD's usual 20 columns, 96 of 64
MAX_LINE_CHARS = 4096  # no NAMD line is longer; the rest of a longer one is dropped
MAX_MESSAGES = 20  # ERROR: and FATAL ERROR lines kept
MAX_MESSAGE_CHARS = 500
# Kept as U+FFFD in messages: JSON would store each as a 6-byte escape.
CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
GPU_PLATFORM_MARKS = ("CUDA", "HIP", "SYCL")  # e.g. Linux-x86_64-multicore-CUDA
INT = r"\d{1,15}"
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,3})?"  # one way to match: no backtracking blow-up
STEP_RE = re.compile(INT)
TIMING_RE = re.compile(
    rf"^TIMING: (?P<step>{INT})\s+CPU: {NUMBER}, {NUMBER}/step\s+Wall: {NUMBER}, (?P<s_per_step>{NUMBER})/step, "
    rf"(?P<hours>{NUMBER}) hours remaining, {NUMBER} [kM]B of memory in use\.?$"
)
PERFORMANCE_RE = re.compile(rf"^PERFORMANCE: (?P<step>{INT})\s+averaging (?P<ns_per_day>{NUMBER}) ns/day")
# NAMD 2.x has no PERFORMANCE lines; it reports its speed at the first load balancing steps instead
BENCHMARK_RE = re.compile(
    rf"^Info: (?:Initial|Benchmark) time: {INT} CPUs {NUMBER} s/step (?P<days_per_ns>{NUMBER}) days/ns"
)
WALLCLOCK_RE = re.compile(rf"^WallClock: (?P<wall>{NUMBER})")
STEPS_RE = re.compile(rf"^TCL: (?:Running|Minimizing) for (?P<steps>{INT}) steps")
NUMSTEPS_RE = re.compile(rf"^Info: NUMBER OF STEPS\s+(?P<steps>{INT})\s*$")
FIRST_STEP_RE = re.compile(rf"^Info: FIRST TIMESTEP\s+(?P<step>{INT})")
TIMESTEP_RE = re.compile(rf"^Info: TIMESTEP\s+(?P<fs>{NUMBER})\s*$")
VERSION_RE = re.compile(r"^Info: NAMD (?P<version>\S{1,40}) for (?P<platform>\S{1,80})\s*$")


def finite(value: float) -> float | None:
    """`value`, or None when it is not finite: NAMD prints nan and inf when a run blows up; JSON has neither."""
    return value if math.isfinite(value) else None


@dataclass
class LogProgress:
    """What the portal shows of a NAMD run; every field may still be unknown (None)."""

    offset: int = 0  # bytes of the log consumed so far
    partial_line: str = ""
    pending_bytes: str = ""  # the start of a UTF-8 character cut by the chunk's end, as latin-1 text
    namd_version: str | None = None  # "3.0.1", from the banner
    namd_platform: str | None = None  # "Linux-x86_64-multicore-CUDA", from the banner
    first_step: int | None = None  # "Info: FIRST TIMESTEP", else the step of the first ENERGY line
    total_steps: int = 0  # the sum of the run/minimize commands seen so far
    numsteps: int | None = None  # "Info: NUMBER OF STEPS": the last step when the config has no run commands
    last_step: int | None = None  # the latest step of an ENERGY or TIMING line
    timestep_fs: float | None = None
    ns_per_day: float | None = None
    seconds_per_step: float | None = None
    hours_remaining: float | None = None
    wallclock_s: float | None = None  # set once NAMD ended normally
    timing_lines: int = 0
    minimizer_line_searches: int = 0  # "LINE MINIMIZER REDUCING GRADIENT" lines
    pressure_step: int | None = None  # the step of the latest PRESSURE: line (outputPressure)
    pressure_tensor: list[float | None] | None = None  # its 9 components, bar: xx xy xz yx yy yz zx zy zz
    group_pressure_tensor: list[float | None] | None = None  # the latest GPRESSURE: line's
    # The columns kept ("TS", "BOND", ...), in the order ETITLE lines first named them: at most MAX_ENERGY_COLUMNS.
    energy_titles: list[str] = field(default_factory=list)
    # Rows in energy_titles' order, shorter when columns were named after them; None: nan, or not printed.
    energies: list[list[float | None]] = field(default_factory=list)
    etitle_width: int = 0  # the latest ETITLE line's column count; 0: as many as energy_titles
    # [its column, the energy_titles index] of each kept column of the latest ETITLE line; None: the same order.
    etitle_kept: list[list[int]] | None = None
    error_lines: list[str] = field(default_factory=list)  # ERROR: lines, the details of a FATAL ERROR
    fatal_errors: list[str] = field(default_factory=list)

    @property
    def has_finished(self) -> bool:
        return self.wallclock_s is not None

    @property
    def is_gpu_build(self) -> bool | None:
        """Whether the banner names a GPU build (CUDA, HIP or SYCL); None before the banner."""
        if self.namd_platform is None:
            return None
        return any(mark in self.namd_platform.upper() for mark in GPU_PLATFORM_MARKS)

    @property
    def fraction_done(self) -> float | None:
        first = self.first_step or 0
        steps = self.total_steps or (self.numsteps or 0) - first
        if self.last_step is None or steps <= 0:
            return None
        return max(0.0, min(1.0, (self.last_step - first) / steps))

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LogProgress:
        """A progress from `to_state()`; keys this version lacks default, unknown ones are ignored."""
        return cls(**{key: value for key, value in state.items() if key in STATE_KEYS})

    def feed(self, chunk: bytes) -> None:
        """Consume the next bytes of the log (from `offset` on)."""
        self.offset += len(chunk)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        decoder.setstate((self.pending_bytes.encode("latin-1"), 0))
        text = self.partial_line + decoder.decode(chunk).replace("\x00", "\ufffd")
        self.pending_bytes = decoder.getstate()[0].decode("latin-1")
        lines = text.split("\n")
        self.partial_line = lines.pop()[:MAX_LINE_CHARS]  # an unfinished line waits for the next chunk
        for line in lines:
            self._line(line[:MAX_LINE_CHARS].rstrip("\r"))

    def _line(self, line: str) -> None:
        if line.startswith("ENERGY: "):
            self._energy(line.split()[1:])
        elif line.startswith("ETITLE: "):
            self._titles(line.split()[1:])
        elif line.startswith(("PRESSURE: ", "GPRESSURE: ")):
            self._pressure(line.split())
        elif line.startswith("LINE MINIMIZER REDUCING GRADIENT"):
            self.minimizer_line_searches += 1
        elif match := TIMING_RE.match(line):
            self._timing(match)
        elif match := PERFORMANCE_RE.match(line):
            self.ns_per_day = finite(float(match["ns_per_day"]))
        elif match := BENCHMARK_RE.match(line):
            days_per_ns = float(match["days_per_ns"])
            self.ns_per_day = finite(1 / days_per_ns) if days_per_ns > 0 else self.ns_per_day
        elif match := STEPS_RE.match(line):
            self.total_steps += int(match["steps"])
        elif match := NUMSTEPS_RE.match(line):
            self.numsteps = int(match["steps"])
        elif match := FIRST_STEP_RE.match(line):
            self.first_step = int(match["step"])
        elif match := TIMESTEP_RE.match(line):
            self.timestep_fs = finite(float(match["fs"]))
        elif match := VERSION_RE.match(line):
            self.namd_version, self.namd_platform = match["version"], match["platform"]
            self.wallclock_s = None  # another NAMD run appends to the same log
        elif match := WALLCLOCK_RE.match(line):
            self.wallclock_s = finite(float(match["wall"]))
            self.hours_remaining = 0.0
        elif "FATAL ERROR" in line:
            self._message(self.fatal_errors, line)
        elif line.startswith("ERROR:"):
            self._message(self.error_lines, line)

    def _timing(self, match: re.Match[str]) -> None:
        self.timing_lines += 1
        self.last_step = max(self.last_step or 0, int(match["step"]))
        self.seconds_per_step = finite(float(match["s_per_step"]))
        self.hours_remaining = finite(float(match["hours"]))
        if self.timestep_fs and self.seconds_per_step and self.seconds_per_step > 0 and self.ns_per_day is None:
            self.ns_per_day = finite(self.timestep_fs * 1e-6 * 86400 / self.seconds_per_step)

    def _titles(self, titles: list[str]) -> None:
        """The columns of the ENERGY lines that follow; new ones are added to those kept while there is room.

        Costs one pass over the line: the rows kept are never rewritten, each says which columns it has.
        """
        if titles[:1] != ["TS"] or any(len(title) > MAX_TITLE_CHARS for title in titles):
            return
        index = {title: position for position, title in enumerate(self.energy_titles)}
        kept = []
        for position, title in enumerate(titles):
            if title not in index and len(self.energy_titles) < MAX_ENERGY_COLUMNS:
                index[title] = len(self.energy_titles)
                self.energy_titles.append(title)
            if title in index:
                kept.append([position, index[title]])
        self.etitle_width = len(titles)
        self.etitle_kept = None if titles == self.energy_titles else kept

    def _energy(self, words: list[str]) -> None:
        """One ENERGY row; one whose column count disagrees with the titles is not NAMD's and is skipped."""
        if not words or not STEP_RE.fullmatch(words[0]):
            return
        if self.energy_titles and len(words) != (self.etitle_width or len(self.energy_titles)):
            return
        kept = self.etitle_kept
        if kept is None:  # the columns in the titles' order (or no titles yet)
            kept = [[position, position] for position in range(min(len(words), MAX_ENERGY_COLUMNS))]
        row: list[float | None] = [None] * (max(index for _, index in kept) + 1)
        try:
            for position, index in kept:
                row[index] = finite(float(words[position]))
        except ValueError:
            return
        step = int(words[0])
        if self.first_step is None:
            self.first_step = step
        self.last_step = max(self.last_step or 0, step)
        row[0] = float(step)
        self.energies.append(row)
        columns = len(self.energy_titles) or MAX_ENERGY_COLUMNS
        while len(self.energies) > min(MAX_SERIES_POINTS, MAX_ENERGY_VALUES // columns):
            self.energies = self.energies[::2]  # halve the resolution, keep first to last

    def _pressure(self, words: list[str]) -> None:
        """A PRESSURE: or GPRESSURE: line: the step, then the 9 tensor components."""
        if len(words) != 11 or not STEP_RE.fullmatch(words[1]):
            return
        try:
            tensor = [finite(float(word)) for word in words[2:]]
        except ValueError:
            return
        if words[0] == "PRESSURE:":
            self.pressure_step, self.pressure_tensor = int(words[1]), tensor
        else:
            self.group_pressure_tensor = tensor

    @staticmethod
    def _message(messages: list[str], line: str) -> None:
        message = CONTROL_CHARS_RE.sub("\ufffd", line.strip()[:MAX_MESSAGE_CHARS])
        if message not in messages and len(messages) < MAX_MESSAGES:
            messages.append(message)

    def energy_series(self, column: str) -> list[tuple[int, float]]:
        """(step, value) pairs of one ETITLE column, e.g. "TOTAL"; empty when the column is unknown."""
        if column not in self.energy_titles:
            return []
        index = self.energy_titles.index(column)
        return [
            (int(row[0] or 0), value) for row in self.energies if len(row) > index and (value := row[index]) is not None
        ]


STATE_KEYS = frozenset(each.name for each in fields(LogProgress))  # what `to_state` writes


def last_figures(state: dict[str, Any]) -> tuple[int | None, float | None, dict[str, float | None]]:
    """(last step, ns/day, the last kept ENERGY row by title) of a `to_state()`: what a table row shows of a run,
    kept beside the state so that readers of many rows never open the whole series."""
    titles = state.get("energy_titles") or []
    rows = state.get("energies") or []
    row = rows[-1] if rows else []
    last = {title: row[index] if index < len(row) else None for index, title in enumerate(titles)}
    return state.get("last_step"), state.get("ns_per_day"), last
