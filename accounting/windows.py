"""Budget windows: the calendar month, quarter or year a day falls in, as inclusive dates.

Pure: takes the period's value and a day (today in the portal's time zone); must never know models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

PHRASES = {"month": "this month", "quarter": "this quarter", "year": "this year"}


@dataclass(frozen=True)
class Window:
    start: date
    end: date  # inclusive


def _month_end(year: int, month: int) -> date:
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return first_of_next - timedelta(days=1)


def window_of(period: str, day: date) -> Window:
    """The window of `period` ("month", "quarter", "year") that `day` falls in. Raises ValueError for another."""
    if period == "month":
        return Window(day.replace(day=1), _month_end(day.year, day.month))
    if period == "quarter":
        first_month = (day.month - 1) // 3 * 3 + 1
        return Window(date(day.year, first_month, 1), _month_end(day.year, first_month + 2))
    if period == "year":
        return Window(date(day.year, 1, 1), date(day.year, 12, 31))
    raise ValueError(f"unknown budget period {period!r}")


def phrase(period: str) -> str:
    """How a sentence names the current window: "this month"."""
    return PHRASES[period]
