"""Budget windows follow the UTC calendar, whatever order the clock is asked in (the last window is remembered)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.limits.periods import current_window


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("period", "moments"),
    [
        (
            "daily",
            [
                (ts(2026, 11, 28, 23, 59, 59), "d:2026-11-28", ts(2026, 11, 29)),
                (ts(2026, 11, 29), "d:2026-11-29", ts(2026, 11, 30)),
                (ts(2026, 11, 28, 12), "d:2026-11-28", ts(2026, 11, 29)),  # back again
            ],
        ),
        (
            "weekly",
            [
                (ts(2026, 11, 29, 23), "w:2026-11-23", ts(2026, 11, 30)),  # Sunday: the week began Monday
                (ts(2026, 11, 30), "w:2026-11-30", ts(2026, 12, 7)),
            ],
        ),
        (
            "monthly",
            [
                (ts(2026, 12, 31, 23, 59), "m:2026-12", ts(2027, 1, 1)),
                (ts(2027, 1, 1), "m:2027-01", ts(2027, 2, 1)),
                (ts(2027, 1, 1) - 0.001, "m:2026-12", ts(2027, 1, 1)),
                (ts(2026, 11, 5), "m:2026-11", ts(2026, 12, 1)),
            ],
        ),
    ],
)
def test_window_and_reset_at_each_moment(period, moments):
    for now, window, resets in moments:
        assert current_window(period, now) == (window, resets), (period, now)
        assert current_window(period, now) == (window, resets), "asked twice"


def test_total_never_resets_and_unknown_periods_fail():
    assert current_window("total", 0.0) == ("total", None)
    with pytest.raises(ValueError, match="hourly"):
        current_window("hourly", 0.0)
