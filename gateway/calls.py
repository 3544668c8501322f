"""One gateway call from arrival to its event: timing, attribution, usage, price.

``CallRecord`` is filled in as the call progresses and turned into exactly one event (``to_event``), whatever
happened: success, validation error, upstream failure, a stream cut off, or a client that went away.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from gateway.errors import ApexError
from gateway.events.schema import empty_event
from gateway.ids import new_id
from gateway.keys import ApiKey
from gateway.pricing import Priced, PriceTable
from gateway.providers.base import Usage

__all__ = ["CallRecord", "prompt_hash"]


def prompt_hash(messages: Any) -> str:
    return hashlib.sha256(orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)).hexdigest()


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
        elapsed = (self.t_end or time.perf_counter()) - self.t0
        ev = empty_event()
        ev.update(
            event_id=new_id(),
            request_id=self.request_id,
            gateway_id=gateway_id,
            ts_start=self.ts_start,
            ts_end=self.ts_start + timedelta(seconds=elapsed),
            endpoint=self.endpoint,
            end_user=self.end_user,
            feature=self.feature,
            tags=self.tags,
            requested_model=self.requested_model,
            served_model=self.served_model,
            provider=self.provider,
            provider_kind=self.provider_kind,
            is_stream=self.is_stream,
            is_simulated=self.is_simulated,
            http_status=self.http_status,
            error_type=self.error_type,
            finish_reason=self.finish_reason,
            usage_source=self.usage_source if self.usage is not None else "none",
            latency_ms=round(elapsed * 1000, 3),
            ttft_ms=round((self.ttft_s if self.ttft_s is not None else elapsed) * 1000, 3),
            upstream_latency_ms=round(self.upstream_s * 1000, 3),
            gateway_overhead_ms=round(max(elapsed - self.upstream_s, 0.0) * 1000, 3),
            routing_decision=self.routing_decision,
            cache_status=self.cache_status,
            cache_similarity=self.cache_similarity,
            cache_match_id=self.cache_match_id,
            compression_tokens_saved=self.compression_tokens_saved,
            compression_status=self.compression_status,
            policy_version=self.policy_version,
            baseline_model=self.baseline_price_model,
        )
        if self.key is not None:
            ev.update(key_id=self.key.key_id, customer_id=self.key.customer_id, team_id=self.key.team_id)
        if self.messages is not None:
            ev["prompt_hash"] = prompt_hash(self.messages)
            if store_prompts:
                ev["prompt_text"] = orjson.dumps(self.messages).decode()
        self._price(ev, prices)
        return ev

    def _price(self, ev: dict[str, Any], prices: PriceTable) -> None:
        u = self.usage
        if u is None:
            ev["price_status"] = "no_usage"
            return
        ev.update(
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            cached_tokens=u.cached_tokens,
            cache_write_tokens=u.cache_write_tokens,
            total_tokens=u.prompt_tokens + u.completion_tokens,
            price_table_version=prices.version,
        )
        served = self.priced or prices.price(
            self.price_model, u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens
        )
        # the baseline is what the model the client asked for would have cost for the same tokens
        if self.baseline_price_model == self.price_model and not self.cache_hit:
            baseline = served
        else:
            baseline = prices.price(
                self.baseline_price_model, u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens
            )
        ev["cost_usd"] = served.cost_usd
        ev["baseline_cost_usd"] = baseline.cost_usd
        if self.cache_hit:
            ev["savings_cache_usd"] = baseline.cost_usd
        elif self.auto_routed and baseline.cost_usd is not None and served.cost_usd is not None:
            ev["savings_routing_usd"] = baseline.cost_usd - served.cost_usd
        if self.compression_tokens_saved and not self.cache_hit and served.price is not None:
            ev["savings_compression_usd"] = self.compression_tokens_saved * served.price.input_cost_per_token
        ev["price_status"] = served.status
        if served.price is not None:
            ev["input_cost_per_token"] = served.price.input_cost_per_token
            ev["output_cost_per_token"] = served.price.output_cost_per_token
            ev["cache_read_cost_per_token"] = served.price.cache_read_cost_per_token
            ev["cache_write_cost_per_token"] = served.price.cache_write_cost_per_token
