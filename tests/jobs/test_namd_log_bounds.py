"""The NAMD log reader's state stays small whatever a log holds, and real logs read as they always did.

A crafted log found when the portal was attacked: ETITLE lines of ~2,000 columns, two sets alternating, with
many ENERGY lines under each. Before the caps, its stored progress grew to 20 MB and each title switch
rewrote every row kept. The real logs are the stand-in engine's (tests/fixtures/namd/logs).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from jobs.models import JobProgress
from jobs.namd_log import MAX_ENERGY_COLUMNS, MAX_MESSAGE_CHARS, MAX_MESSAGES, LogProgress
from jobs.services.progress import MAX_LOG_BYTES_PER_SYNC, feed_log
from tests.factories import JobFactory

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "namd" / "logs"
STORED_BYTES_BOUND = 256 * 1024
WIDE_COLUMNS = 2000


def wide_titles(first: int) -> list[str]:
    """TS and 1,999 one-character titles (CJK letters), so that 2,000 columns fit in one 4,096-character line."""
    return ["TS", *(chr(first + index) for index in range(WIDE_COLUMNS - 1))]


def crafted_log(switches: int = 60, rows_per_title: int = 40) -> str:
    """Two 2,000-column ETITLE lines alternating, each followed by ENERGY lines of 2,000 numbers."""
    lines = []
    step = 0
    for switch in range(switches):
        lines.append("ETITLE: " + " ".join(wide_titles(0x4E00 if switch % 2 == 0 else 0x5E00)))
        for _ in range(rows_per_title):
            lines.append(f"ENERGY: {step} " + " ".join(["1"] * (WIDE_COLUMNS - 1)))
            step += 1
    return "\n".join(lines) + "\n"


def widest_log() -> str:
    """The most a state can hold: 64 columns of the longest numbers, the most messages of control characters
    (each stored as an escape), and a last line cut off at its longest."""
    titles = ["TS", *(f"C{index}" for index in range(MAX_ENERGY_COLUMNS - 1))]
    number = "-1.2345678901234567e-300"
    lines = ["ETITLE: " + " ".join(titles)]
    lines += [f"ENERGY: {step} " + " ".join([number] * (MAX_ENERGY_COLUMNS - 1)) for step in range(5000)]
    junk = "\x01" * MAX_MESSAGE_CHARS
    lines += [f"FATAL ERROR {index} {junk}" for index in range(MAX_MESSAGES)]
    lines += [f"ERROR: {index} {junk}" for index in range(MAX_MESSAGES)]
    return "\n".join(lines) + "\n" + "\x01" * 5000


def stored_bytes(progress: JobProgress) -> int:
    """The log state's size as PostgreSQL stores it (jsonb)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_size(log_state) FROM jobs_jobprogress WHERE job_id = %s", [progress.job_id])
        (size,) = cursor.fetchone()
    return size


@pytest.mark.django_db
@pytest.mark.parametrize("log", [crafted_log(), widest_log()], ids=["alternating-2000-columns", "widest"])
def test_the_stored_progress_stays_small_whatever_the_log(log: str) -> None:
    progress = JobProgress.objects.create(job=JobFactory(running=True))
    data = log.encode()
    for start in range(0, len(data), MAX_LOG_BYTES_PER_SYNC):  # as the syncs read it, a few MiB each
        progress = JobProgress.objects.get(pk=progress.pk)
        feed_log(progress, data[start : start + MAX_LOG_BYTES_PER_SYNC].decode(errors="ignore"), timezone.now(), 30)
        progress.save()

    progress = JobProgress.objects.get(pk=progress.pk)
    assert len(json.dumps(progress.log_state, ensure_ascii=False).encode()) < STORED_BYTES_BOUND
    assert stored_bytes(progress) < STORED_BYTES_BOUND
    log_progress = LogProgress.from_state(progress.log_state)
    assert len(log_progress.energy_titles) <= MAX_ENERGY_COLUMNS
    assert log_progress.energies != []


def test_the_crafted_log_keeps_the_first_titles_columns_and_every_step() -> None:
    progress = LogProgress()
    progress.feed(crafted_log(switches=4, rows_per_title=3).encode())

    assert progress.energy_titles == wide_titles(0x4E00)[:MAX_ENERGY_COLUMNS]
    assert progress.etitle_width == WIDE_COLUMNS
    assert [step for step, _ in progress.energy_series("TS")] == list(range(12))
    assert progress.energy_series(chr(0x4E00)) == [(0, 1.0), (1, 1.0), (2, 1.0), (6, 1.0), (7, 1.0), (8, 1.0)]
    assert progress.last_step == 11


def test_a_title_switch_leaves_the_rows_kept_as_they_are() -> None:
    progress = LogProgress()
    progress.feed(crafted_log(switches=1, rows_per_title=50).encode())
    rows_before = list(progress.energies)

    progress.feed(("ETITLE: " + " ".join(wide_titles(0x5E00)) + "\n").encode())

    assert len(progress.energies) == len(rows_before)
    assert all(after is before for after, before in zip(progress.energies, rows_before, strict=True))


def test_a_title_longer_than_namds_makes_the_line_not_namds() -> None:
    progress = LogProgress()
    progress.feed(b"ETITLE: TS BOND\nETITLE: TS " + b"X" * 40 + b"\nENERGY: 10 2.5\n")

    assert progress.energy_titles == ["TS", "BOND"]
    assert progress.energy_series("BOND") == [(10, 2.5)]


def reference_series(data: bytes) -> dict[str, list[tuple[int, float]]]:
    """Each column's (step, value) pairs read the plain way: every ENERGY line under the ETITLE line before it."""
    series: dict[str, list[tuple[int, float]]] = {}
    titles: list[str] = []
    for line in data.decode().splitlines():
        words = line.split()
        if line.startswith("ETITLE: "):
            titles = words[1:]
            for title in titles:
                series.setdefault(title, [])
        elif line.startswith("ENERGY: ") and len(words) - 1 == len(titles):
            for title, word in zip(titles, words[1:], strict=True):
                if math.isfinite(float(word)):
                    series[title].append((int(words[1]), float(word)))
    return series


RECORDED = {path.name: path.read_bytes() for path in sorted(LOGS.glob("*.log"))}
RECORDED["namd2_minimize.log + namd2_npt_pme.log"] = RECORDED["namd2_minimize.log"] + RECORDED["namd2_npt_pme.log"]


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_real_logs_keep_every_energy_of_every_column(name: str) -> None:
    data = RECORDED[name]
    progress = LogProgress()
    progress.feed(data)
    stored = LogProgress.from_state(json.loads(json.dumps(progress.to_state())))

    expected = reference_series(data)
    assert stored.energy_titles == list(expected)
    assert {title: stored.energy_series(title) for title in stored.energy_titles} == expected
