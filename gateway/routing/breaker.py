"""A circuit breaker for one deployment: closed → open after repeated failures → half-open probe → closed.

Closed: calls pass; a failure is remembered for ``window_s``, and ``failures`` of them open the circuit.
Open: calls skip the deployment until ``cooldown_s`` has passed; then it is half-open.
Half-open: exactly one call (the probe) may go through; its success closes the circuit, its failure reopens it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import IntEnum

from contracts.settings import BreakerSettings

__all__ = ["CircuitBreaker", "CircuitState"]


class CircuitState(IntEnum):
    """Values match the ``apex_circuit_state`` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


_CLOSED = CircuitState.CLOSED


class CircuitBreaker:
    def __init__(
        self,
        settings: BreakerSettings,
        clock: Callable[[], float],
        on_change: Callable[[CircuitState], None] | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._on_change = on_change
        self._state = CircuitState.CLOSED
        self._failures: deque[float] = deque()
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self._settings.cooldown_s:
            self._set(CircuitState.HALF_OPEN)
        return self._state

    @property
    def probing(self) -> bool:
        return self._probing

    def recent_failures(self) -> int:
        self._prune(self._clock())
        return len(self._failures)

    def available(self) -> bool:
        """Would a call be let through now (without taking the half-open probe slot)?"""
        if self._state is _CLOSED:
            return True  # every call asks: skip the property while nothing is wrong
        state = self.state
        return state is CircuitState.CLOSED or (state is CircuitState.HALF_OPEN and not self._probing)

    def acquire(self) -> bool:
        """Take permission for one call; in half-open that is the one probe. Pair with a ``record_*`` call."""
        if self._state is _CLOSED:
            return True
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def acquire_probe(self) -> bool:
        """The health checker's probe: allowed while open too, as long as no other probe is out."""
        if self.state is CircuitState.CLOSED or self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        self._probing = False
        self._failures.clear()
        self._set(CircuitState.CLOSED)

    def record_failure(self) -> None:
        now = self._clock()
        self._probing = False
        if self.state is not CircuitState.CLOSED:
            self._open(now)  # a failed probe (or a straggler that failed while open) restarts the cooldown
            return
        self._failures.append(now)
        self._prune(now)
        if len(self._failures) >= self._settings.failures:
            self._open(now)

    def release(self) -> None:
        """The call told us nothing about the deployment's health (e.g. the client's request was bad)."""
        self._probing = False

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._failures.clear()
        self._set(CircuitState.OPEN)

    def _prune(self, now: float) -> None:
        while self._failures and now - self._failures[0] > self._settings.window_s:
            self._failures.popleft()

    def _set(self, state: CircuitState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)
