"""The time limit one upstream attempt hands its HTTP client."""

from __future__ import annotations

import pytest

from gateway.providers.base import attempt_timeout


@pytest.mark.parametrize(
    ("own", "limit", "expected"),
    [
        (600.0, None, 600.0),  # no limit from the dispatcher: the provider's own timeout
        (600.0, 599.9999, 600.0),  # the time left to a far deadline: one value, not a new one per call
        (10.0, 30.0, 10.0),  # the provider's own timeout caps the attempt
        (600.0, 0.25, 0.3),  # rounded up to 0.1 s, never cut short
        (600.0, 0.3, 0.3),
        (600.0, 0.0, 0.1),  # never 0 ("no timeout" to HTTP clients)
        (600.0, -2.0, 0.1),
    ],
)
def test_attempt_timeout(own, limit, expected):
    assert attempt_timeout(own, limit) == pytest.approx(expected)
