"""The NAMD log reader never raises, and its state always fits PostgreSQL's jsonb, whatever the log holds.

Logs from other labs' NAMD builds, logs cut anywhere, junk after a crash: garbage bytes, very long lines,
invalid UTF-8, ENERGY lines with the wrong column count, nan and 1e400. The lines start from ones the
stand-in engine really wrote (tests/fixtures/namd/logs), mangled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.namd_log import LogProgress

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "namd" / "logs"
RECORDED_LINES = sorted({line for path in LOGS.glob("*.log") for line in path.read_text().splitlines() if line})
ODD_WORDS = [
    "nan",
    "-nan",
    "inf",
    "-inf",
    "1e400",
    "-1e400",
    "1e-400",
    "NaN",
    "0x1f",
    "1_000",
    "99" * 20,
    "",
    "TS",
    "\x00",
    "\ufffd",
    "é",
    "\r",
    "ENERGY:",
    "ETITLE:",
    "FATAL ERROR",
    "ERROR:",
]

words = st.one_of(
    st.sampled_from(ODD_WORDS),
    st.integers().map(str),
    st.floats().map(str),
    st.text(max_size=10),
)


@st.composite
def mangled_lines(draw: st.DrawFn) -> str:
    """A recorded line with words dropped, replaced or added: wrong column counts, odd numbers."""
    line_words = draw(st.sampled_from(RECORDED_LINES)).split(" ")
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        position = draw(st.integers(min_value=0, max_value=len(line_words)))
        action = draw(st.sampled_from(["drop", "replace", "insert"]))
        if action == "insert" or position == len(line_words):
            line_words.insert(position, draw(words))
        elif action == "drop":
            del line_words[position]
        else:
            line_words[position] = draw(words)
    return " ".join(line_words)


logs = st.one_of(
    st.binary(max_size=3000),
    st.lists(st.one_of(mangled_lines(), st.sampled_from(RECORDED_LINES)), max_size=60).map(
        lambda lines: "\n".join(lines).encode()
    ),
    st.lists(st.one_of(mangled_lines(), st.binary(max_size=50).map(lambda b: b.decode("latin-1"))), max_size=20).map(
        lambda lines: "\n".join(lines).encode("utf-8", "replace") + b"\xe2\x82"  # ends inside a character
    ),
    st.integers(min_value=5000, max_value=50000).map(lambda size: b"ENERGY: 1 " + b"2.5 " * size + b"\n"),
    st.integers(min_value=5000, max_value=50000).map(lambda size: b"\x00" * size),  # a zero-filled block
)


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def assert_storable(progress: LogProgress) -> None:
    """The state is JSON PostgreSQL's jsonb takes (no NaN, no infinity, no NUL, no lone surrogate) and round-trips."""
    state = progress.to_state()
    text = json.dumps(state, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # raises on a lone surrogate
    assert not any("\x00" in string for string in strings(state))
    assert LogProgress.from_state(json.loads(text)).to_state() == state


@settings(max_examples=300, deadline=None)
@given(data=logs, cuts=st.lists(st.integers(min_value=0, max_value=60000), max_size=8))
def test_any_bytes_in_any_chunks_read_without_error_into_a_storable_state(data: bytes, cuts: list[int]) -> None:
    whole = LogProgress()
    whole.feed(data)

    assert_storable(whole)
    assert whole.offset == len(data)
    for column in [*whole.energy_titles, "TOTAL", "NOPE"]:
        assert all(isinstance(step, int) and isinstance(value, float) for step, value in whole.energy_series(column))
    fraction = whole.fraction_done
    assert fraction is None or 0.0 <= fraction <= 1.0
    assert whole.has_finished in (True, False)
    assert whole.is_gpu_build in (True, False, None)
    chunked, position = LogProgress(), 0
    for cut in sorted(cuts):
        chunked.feed(data[position:cut])
        position = max(position, cut)
        chunked = LogProgress.from_state(json.loads(json.dumps(chunked.to_state())))
    chunked.feed(data[position:])
    assert chunked.to_state() == whole.to_state()


def test_non_finite_numbers_are_kept_as_unknown_rather_than_stored() -> None:
    titles = next(line for line in RECORDED_LINES if line.startswith("ETITLE:") and "PRESSURE" not in line)
    energy = "ENERGY:      10" + "".join(f" {value:>14}" for value in ["nan", "1e400", "-nan", *["1.5"] * 11])
    timing = next(line for line in RECORDED_LINES if line.startswith("TIMING: 10 "))
    overflowing = re.sub(r"\S+ hours remaining", "1e999 hours remaining", timing)
    progress = LogProgress()
    progress.feed(f"{titles}\n{energy}\n{overflowing}\n".encode())

    assert progress.energies == [[10.0, None, None, None, *[1.5] * 11]]
    assert progress.energy_series("BOND") == []
    assert progress.energy_series("TOTAL") == [(10, 1.5)]
    assert progress.timing_lines == 1
    assert progress.hours_remaining is None
    assert_storable(progress)


def test_an_energy_line_with_the_wrong_column_count_is_skipped() -> None:
    titles = next(line for line in RECORDED_LINES if line.startswith("ETITLE:") and "PRESSURE" not in line)
    progress = LogProgress()
    progress.feed(f"{titles}\nENERGY: 10 1.0 2.0\nENERGY: 20 {' '.join(['1.0'] * 14)}\n".encode())

    assert [row[0] for row in progress.energies] == [20.0]
    assert progress.last_step == 20


def test_a_state_written_before_the_new_fields_still_loads() -> None:
    """A state as the previous version of the reader stored it: no version, pressure or message fields."""
    old_state = {
        "offset": 120,
        "partial_line": "ENERGY:   ",
        "first_step": None,
        "total_steps": 300,
        "last_step": 100,
        "timestep_fs": 2.0,
        "ns_per_day": 8.5,
        "seconds_per_step": 0.02,
        "hours_remaining": 0.1,
        "wallclock_s": None,
        "timing_lines": 2,
        "energy_titles": ["TS", "TOTAL"],
        "energies": [[0.0, -5.0], [100.0, -6.0]],
        "fatal_errors": [],
    }

    progress = LogProgress.from_state(old_state)

    assert progress.namd_version is None
    assert progress.pending_bytes == ""
    assert progress.energy_series("TOTAL") == [(0, -5.0), (100, -6.0)]
    assert progress.fraction_done == 100 / 300
    progress.feed(b"     200      -7.0\n")
    assert progress.energy_series("TOTAL")[-1] == (200, -7.0)


def test_a_state_with_keys_of_a_newer_version_still_loads() -> None:
    state = {**LogProgress(total_steps=10).to_state(), "gpu_count": 4}

    assert LogProgress.from_state(state).total_steps == 10
