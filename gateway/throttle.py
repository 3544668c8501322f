"""Per-client-address token buckets that limit failed authentications (API keys and the admin master key).

A client spends one token per failed attempt; tokens come back at ``rate_per_s`` up to ``burst``. An address
without a whole token is refused (429 with Retry-After) *before* its credential is checked, so a correct guess
from a throttled address is indistinguishable from a wrong one, and a flood of wrong keys costs no key lookups.
A check that needs a lookup reserves its token first (``take``) and gets it back when the key was valid
(``refund``): a burst of concurrent unknown keys cannot all pass the gate before the first of them fails. A request
that finds the bucket empty while its address has lookups in flight waits for one to settle (``PendingLookups``)
before it is refused, so a burst of first calls with a valid key is never refused for its own reservations.

The buckets live in this process's memory (several gateway replicas each throttle on their own), and the table
is bounded: full buckets are dropped first, then the oldest.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["FailureThrottle", "PendingLookups"]


class FailureThrottle:
    """Token buckets by client address. Not thread-safe: used from the event loop only."""

    __slots__ = ("_buckets", "_burst", "_max_clients", "_rate")

    def __init__(self, rate_per_s: float, burst: int, *, max_clients: int = 100_000) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max_clients = max_clients
        # address -> [tokens, monotonic time of the last update]
        self._buckets: dict[str, list[float]] = {}

    def take(self, client: str) -> float | None:
        """Spend one token of ``client``'s bucket. None when it had one; else the seconds until it will."""
        now = time.monotonic()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self._max_clients:
                self._prune(now)
            self._buckets[client] = [self._burst - 1.0, now]
            return None
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return None
        bucket[0] = tokens
        return (1.0 - tokens) / self._rate

    def refund(self, client: str) -> None:
        """Give back a token ``take`` spent on an attempt that turned out valid."""
        bucket = self._buckets.get(client)
        if bucket is not None:
            bucket[0] = min(self._burst, bucket[0] + 1.0)

    def _prune(self, now: float) -> None:
        full = [c for c, (tokens, at) in self._buckets.items() if tokens + (now - at) * self._rate >= self._burst]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) >= self._max_clients:  # all still empty-ish: forget the oldest half
            for client in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[client]


class PendingLookups:
    """Key lookups in flight per client address, so that a request finding its address's bucket empty can tell
    "this address failed too often" (refuse now) from "this address's own lookups hold the tokens" (wait for one
    of them to settle, then look again): a burst of first calls with a new, valid key must not be refused because
    its siblings reserved the tokens a moment earlier. Event loop only."""

    __slots__ = ("_by_client",)

    def __init__(self) -> None:
        # address -> [lookups in flight, event set when one of them settles]
        self._by_client: dict[str, list[Any]] = {}

    def started(self, client: str) -> None:
        entry = self._by_client.get(client)
        if entry is None:
            self._by_client[client] = [1, asyncio.Event()]
        else:
            entry[0] += 1

    def settled(self, client: str) -> None:
        entry = self._by_client[client]
        entry[0] -= 1
        done, entry[1] = entry[1], asyncio.Event()
        done.set()
        if entry[0] == 0:
            del self._by_client[client]

    async def wait_one(self, client: str) -> bool:
        """Wait until one of ``client``'s lookups settles; False at once when none is in flight."""
        entry = self._by_client.get(client)
        if entry is None:
            return False
        await entry[1].wait()
        return True
