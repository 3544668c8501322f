"""Budget periods: which spend window a moment belongs to, and when that window resets (UTC calendar)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

__all__ = ["PERIODS", "Period", "check_period", "current_window"]

Period = Literal["daily", "weekly", "monthly", "total"]
PERIODS: tuple[str, ...] = get_args(Period)


def check_period(period: str) -> Period:
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)} (got {period!r})")
    return period  # type: ignore[return-value]


# period -> (start, end, window id): every admission asks, and the calendar arithmetic cost ~2 us a call
_last: dict[str, tuple[float, float, str]] = {}


def current_window(period: str, now: float) -> tuple[str, float | None]:
    """The window id for ``period`` at unix time ``now`` and the unix time it resets (None: never)."""
    if period == "total":
        return "total", None
    last = _last.get(period)
    if last is not None and last[0] <= now < last[1]:
        return last[2], last[1]
    window, start, end = _window(period, now)
    _last[period] = (start, end, window)
    return window, end


def _window(period: str, now: float) -> tuple[str, float, float]:
    t = datetime.fromtimestamp(now, UTC)
    day = datetime(t.year, t.month, t.day, tzinfo=UTC)
    if period == "daily":
        start, end = day, day + timedelta(days=1)
        return f"d:{start:%Y-%m-%d}", start.timestamp(), end.timestamp()
    if period == "weekly":
        start = day - timedelta(days=day.weekday())  # ISO weeks start on Monday
        return f"w:{start:%Y-%m-%d}", start.timestamp(), (start + timedelta(days=7)).timestamp()
    if period == "monthly":
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return f"m:{start:%Y-%m}", start.timestamp(), end.timestamp()
    raise ValueError(f"unknown budget period {period!r}")
