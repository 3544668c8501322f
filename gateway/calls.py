"""One gateway call from arrival to its event: timing, attribution, usage, price.

``CallRecord`` is filled in as the call progresses and turned into exactly one event (``to_event``), whatever
happened: success, validation error, upstream failure, a stream cut off, or a client that went away.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contracts.events import FIELD_NAMES
from contracts.ids import new_id
from contracts.pricing import Priced, PriceTable
from contracts.settings import ModelRoute
from gateway.errors import ApexError
from gateway.events.rows import EventRows
from gateway.hints import NO_HINTS, Hints
from gateway.keys import ApiKey
from gateway.providers.base import Usage

__all__ = ["CallRecord"]


@dataclass(slots=True)
class CallRecord:
    endpoint: str
    request_id: str = field(default_factory=new_id)
    t0: float = field(default_factory=time.perf_counter)
    ts_start: datetime = field(default_factory=lambda: datetime.now(UTC))
    key: ApiKey | None = None
    end_user: str | None = None
    feature: str | None = None
    tags: list[str] | None = None
    requested_model: str | None = None
    served_model: str | None = None
    price_model: str | None = None
    """Price-table name of the model that served the call."""
    baseline_price_model: str | None = None
    """Price-table name of the model the client asked for (differs once routing changes the model)."""
    provider: str | None = None
    provider_kind: str | None = None
    is_stream: bool = False
    is_simulated: bool = False
    http_status: int = 200
    error_type: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    usage_source: str = "none"
    ttft_s: float | None = None
    upstream_s: float = 0.0
    messages: Any = None
    upstream_messages: Any = None
    """The messages sent upstream when an optimizer rewrote them (compression); ``messages`` is what came in."""
    t_end: float | None = None
    priced: Priced | None = None
    routing_decision: str | None = None
    """Set when routing did more than send the call to its first choice (retries, fallback)."""
    reservation: Any = None
    """The budget/rate hold taken at admission (``gateway.limits``); closed in ``GatewayState.finish``."""
    cache_status: str | None = None
    """``hit_exact``/``hit_semantic`` when a cache answered; ``miss`` when consulted and it did not; ``shadow_hit``
    and ``bypass`` for the semantic cache (see the event schema)."""
    cache_key: str | None = None
    cache_similarity: float | None = None
    cache_match_id: str | None = None
    semantic_pending: tuple[str, str, Any] | None = None
    """``(scope, text, vector)`` of a semantic-cache miss, so the answer can be stored once it is complete."""
    compression_tokens_saved: int | None = None
    compression_status: str | None = None
    policy_version: str | None = None
    auto_routed: bool = False
    """Learned routing chose the served model: the difference to the baseline is claimed as routing savings."""
    # What the levers work on (``gateway.levers``); not part of the event.
    body: dict[str, Any] | None = None
    """The canonical request body as it will go upstream (a lever may replace it, e.g. compression)."""
    route: ModelRoute | None = None
    """The route the call will be dispatched to (a lever may change it, e.g. learned routing)."""
    hints: Hints = NO_HINTS
    store_answer: bool = False
    """A lever wants the finished answer (a cache miss to fill): levers' ``after`` runs once the answer is whole."""

    @property
    def cache_hit(self) -> bool:
        return self.cache_status in ("hit_exact", "hit_semantic")

    def close(self, prices: PriceTable) -> Priced | None:
        """Stop the clock and price the call (on the request path: spend must settle before the next call)."""
        self.t_end = time.perf_counter()
        u = self.usage
        if u is not None and self.cache_hit:
            self.priced = Priced(0.0, None)  # nothing was bought: the answer came from the cache
        elif u is not None:
            self.priced = prices.price(
                self.price_model, u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens
            )
        return self.priced

    def fail(self, err: ApexError) -> None:
        self.http_status = err.status
        self.error_type = err.code or err.type

    def to_event(self, prices: PriceTable, *, gateway_id: str, store_prompts: bool) -> dict[str, Any]:
        """The call's event, by field name. The event writer builds it as a row (``gateway.events.rows``, where
        each field's value is defined); this is that row as a dict."""
        row = EventRows(prices, gateway_id=gateway_id, store_prompts=store_prompts).row(self)
        return dict(zip(FIELD_NAMES, row, strict=True))
