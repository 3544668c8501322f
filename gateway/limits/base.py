"""The interface every limit backend implements, and the values that cross it.

A call is admitted by ``reserve`` (its worst-case cost and tokens are held against every budget and rate window
it touches, or ``RateLimitError`` is raised and nothing is held), and closed exactly once by ``settle`` (the
reservation is swapped for the actual cost) or ``release`` (nothing was bought). A backend does the check and the
hold as one atomic step; that, not the order of awaits in the caller, is what keeps concurrent calls from
overspending.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import QuotaExceededError, RateLimitError

__all__ = [
    "AdmissionRequest",
    "BudgetLine",
    "LimitStore",
    "OpenReservations",
    "Reservation",
    "budget_exceeded",
    "rate_exceeded",
]

RATE_WINDOW_S = 60
"""RPM/TPM use fixed 60 s windows (a burst of up to twice the limit is possible across a window edge)."""

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One budget a call is charged against: the key's or its team's, in the current period window."""

    scope: str  # "key" or "team"
    scope_id: str
    window: str
    limit_usd: float | None  # None: no limit, the spend is still counted
    resets_at: float | None  # unix time; None for ``total`` budgets


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    key_id: str
    budgets: tuple[BudgetLine, ...]
    rpm: int | None
    tpm: int | None
    cost_usd: float
    tokens: int
    now: float = field(default_factory=time.time)

    @property
    def rate_window(self) -> int:
        return int(self.now // RATE_WINDOW_S)

    def rate_retry_after(self) -> float:
        return (self.rate_window + 1) * RATE_WINDOW_S - self.now


@dataclass(slots=True)
class Reservation:
    key_id: str
    budgets: tuple[BudgetLine, ...]
    cost_usd: float
    tokens: int
    rate_window: int
    id: int = field(default_factory=lambda: next(_ids))
    created: float = field(default_factory=time.monotonic)


class LimitStore(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def reserve(self, req: AdmissionRequest) -> Reservation:
        """Hold the request's cost and tokens, or raise ``RateLimitError`` holding nothing."""
        ...

    def settle(self, res: Reservation, actual_usd: float, actual_tokens: int) -> None:
        """Replace the hold with what the call cost. Never blocks; a second settle of the same hold is ignored."""
        ...

    def release(self, res: Reservation) -> None:
        """Drop the hold: the call bought nothing."""
        ...


def budget_exceeded(line: BudgetLine, cost_usd: float, now: float) -> RateLimitError:
    """A periodic budget resets: 429 ``budget_exceeded`` with Retry-After (seconds to the window's end). A
    ``total`` budget never does: 429 ``insufficient_quota``, as OpenAI answers a spent quota, and no Retry-After."""
    who = "key" if line.scope == "key" else f"team {line.scope_id!r}"
    needs = (
        f"The budget of ${line.limit_usd:.4f} for this {who} cannot cover this request "
        f"(up to ${cost_usd:.6f} with its max_tokens)."
    )
    if line.resets_at is None:
        return QuotaExceededError(
            f"{needs} It is a total budget and does not reset: raise it with `apex keys` or the admin API.",
            code="insufficient_quota",
            should_retry=False,
        )
    return RateLimitError(
        f"{needs} It resets at the end of the period.",
        code="budget_exceeded",
        retry_after=max(line.resets_at - now, 1.0),
    )


def rate_exceeded(what: str, limit: int, req: AdmissionRequest, *, fits: bool = True) -> RateLimitError:
    """Over the RPM or TPM window: 429 with Retry-After (seconds to the window's end). A request that needs more
    tokens than the TPM limit can never pass: 429 ``tokens_exceed_limit`` without Retry-After (OpenAI's "Request too
    large" is a 429 too; a client that retries on Retry-After must not be told to wait for nothing)."""
    if not fits:
        return RateLimitError(
            f"Request too large: it needs {req.tokens} tokens (prompt + max_tokens), more than the key's limit of "
            f"{limit} tokens per minute, so it can never run; lower max_tokens or shorten the prompt.",
            code="tokens_exceed_limit",
            should_retry=False,
        )
    return RateLimitError(
        f"Rate limit of {limit} {what} per minute reached for this key.",
        code="rate_limit_exceeded",
        retry_after=max(req.rate_retry_after(), 1.0),
    )


class OpenReservations:
    """Reservations not yet closed: makes settle/release idempotent and finds holds a lost stream left behind."""

    def __init__(self) -> None:
        self._open: dict[int, Reservation] = {}

    def add(self, res: Reservation) -> None:
        self._open[res.id] = res

    def close(self, res: Reservation) -> bool:
        return self._open.pop(res.id, None) is not None

    def stale(self, ttl_s: float) -> list[Reservation]:
        cutoff = time.monotonic() - ttl_s
        return [r for r in self._open.values() if r.created < cutoff]

    def __len__(self) -> int:
        return len(self._open)
