"""Which upstream failures are worth another attempt, and how long to wait before retrying a deployment."""

from __future__ import annotations

import random
import re

from gateway.errors import ApexError, UpstreamRateLimitError, UpstreamTimeoutError

__all__ = ["backoff_delay", "counts_against_deployment", "is_retryable"]

_SERVER_ERROR = re.compile(r"upstream_5\d\d")
_TRANSIENT_CODES = {"upstream_unreachable", "upstream_stream_interrupted", "upstream_empty_stream"}


def is_retryable(err: ApexError) -> bool:
    """429s, 5xx, timeouts and connection failures; a request the provider rejected (4xx) would fail anywhere."""
    if isinstance(err, UpstreamRateLimitError | UpstreamTimeoutError):
        return True
    code = err.code or ""
    return code in _TRANSIENT_CODES or bool(_SERVER_ERROR.fullmatch(code))


def counts_against_deployment(err: ApexError) -> bool:
    """Failures that say the deployment is unwell. A 429 says it is busy: it is retried but does not open the
    circuit (Retry-After already tells us when to come back)."""
    return is_retryable(err) and not isinstance(err, UpstreamRateLimitError)


def backoff_delay(retry: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: ``base * 2**retry`` capped at ``max_s``, then scaled by 50–100%.

    ``retry`` counts from 0 (the first retry of a deployment already tried)."""
    ceiling = min(max_s, base_s * (2**retry))
    return ceiling * (0.5 + rng.random() / 2)
