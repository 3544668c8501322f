"""A call's event as a row: a tuple of its values in ``FIELD_NAMES`` order. This is where each field's value is
defined; ``CallRecord.to_event`` is the same row keyed by field name.

The event writer's thread builds one per call, and it shares the gateway's core with the request path: a tuple
built in one go costs half what a dict filled by keyword ``update`` calls (and taken apart again into columns)
did, and the Arrow columns are cut straight from the tuples.
``tests/gateway/test_event_rows.py`` holds the rows to the values the dict-based ``to_event`` gave before them.
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from math import copysign as _copysign
from typing import TYPE_CHECKING, Any

import orjson

from contracts.events import FIELD_NAMES, SCHEMA_VERSION
from contracts.ids import new_id

if TYPE_CHECKING:
    from contracts.pricing import PriceTable
    from gateway.calls import CallRecord

__all__ = ["ROW_FIELDS", "EventRows", "prompt_hash"]

# The order the tuple below is written in; checked against the schema at import so a new column cannot be
# silently misplaced (add it here and in ``row``).
ROW_FIELDS: tuple[str, ...] = (
    "schema_version", "event_id", "request_id", "gateway_id", "key_id", "customer_id", "team_id", "end_user",
    "feature", "tags", "ts_start", "ts_end", "endpoint", "requested_model", "served_model", "provider",
    "provider_kind", "is_stream", "is_simulated", "http_status", "error_type", "finish_reason", "prompt_tokens",
    "completion_tokens", "cached_tokens", "total_tokens", "usage_source", "cost_usd", "baseline_cost_usd",
    "price_status", "price_table_version", "input_cost_per_token", "output_cost_per_token",
    "cache_read_cost_per_token", "latency_ms", "ttft_ms", "upstream_latency_ms", "gateway_overhead_ms",
    "cache_status", "cache_similarity", "compression_tokens_saved", "routing_decision", "policy_version",
    "savings_cache_usd", "savings_routing_usd", "savings_compression_usd", "cache_match_id", "compression_status",
    "baseline_model", "cache_write_tokens", "cache_write_cost_per_token", "prompt_hash", "prompt_text",
)  # fmt: skip
if ROW_FIELDS != FIELD_NAMES:  # pragma: no cover - a schema change without this module
    raise RuntimeError("gateway/events/rows.py is out of step with the event schema (FIELD_NAMES)")


def prompt_hash(messages: Any) -> str:
    return hashlib.sha256(orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)).hexdigest()


_CACHE_HITS = ("hit_exact", "hit_semantic")  # as CallRecord.cache_hit


def _ms(x: float) -> float:
    """``round(x, 3)`` (the millisecond fields), without its decimal-string round trip (~0.3 us, three times per
    event) when the answer is plain: when ``x * 1000`` is far (1e-4) from halfway between two integers, rounding
    it gives the integer ``round`` rounds the exact ``x`` to, and ``n / 1000`` is the float nearest that decimal,
    as ``round``'s result is. Near a tie (and out of range, nan, inf) ``round`` itself decides."""
    y = x * 1000
    if -1e9 < y < 1e9:
        n = round(y)
        if -0.4999 < y - n < 0.4999:
            return n / 1000 if n else _copysign(0.0, y)  # round(-0.0001, 3) is -0.0
    return round(x, 3)


class EventRows:
    """Builds event rows for one gateway (its id, price table and prompt-storage setting)."""

    __slots__ = ("gateway_id", "prices", "store_prompts")

    def __init__(self, prices: PriceTable, *, gateway_id: str, store_prompts: bool) -> None:
        self.prices = prices
        self.gateway_id = gateway_id
        self.store_prompts = store_prompts

    def row(self, c: CallRecord) -> tuple[Any, ...]:
        """The event of a closed (or, for its latency, still open) call."""
        elapsed = (c.t_end or time.perf_counter()) - c.t0
        latency_ms = _ms(elapsed * 1000)
        ts_start = c.ts_start
        upstream_s = c.upstream_s
        ttft_s = c.ttft_s
        ttft_ms = latency_ms if ttft_s is None else _ms(ttft_s * 1000)
        cache_status = c.cache_status
        cache_hit = cache_status in _CACHE_HITS
        key = c.key
        key_id: str | None
        customer_id: str | None
        team_id: str | None
        p_hash: str | None
        p_text: str | None
        if key is not None:
            key_id, customer_id, team_id = key.key_id, key.customer_id, key.team_id
        else:
            key_id = customer_id = team_id = None
        messages = c.messages
        if messages is not None:
            p_hash = prompt_hash(messages)
            p_text = orjson.dumps(messages).decode() if self.store_prompts else None
        else:
            p_hash = p_text = None

        u = c.usage
        prompt_tokens = completion_tokens = cached_tokens = cache_write_tokens = total_tokens = None
        cost_usd = baseline_cost_usd = price_table_version = None
        input_cpt = output_cpt = cache_read_cpt = cache_write_cpt = None
        savings_cache = savings_routing = savings_compression = None
        if u is None:
            usage_source = "none"
            price_status = "no_usage"
        else:
            usage_source = c.usage_source
            prices = self.prices
            prompt_tokens = u.prompt_tokens
            completion_tokens = u.completion_tokens
            cached_tokens = u.cached_tokens
            cache_write_tokens = u.cache_write_tokens
            total_tokens = prompt_tokens + completion_tokens
            price_table_version = prices.version
            served = c.priced or prices.price(
                c.price_model, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens
            )
            # the baseline is what the model the client asked for would have cost for the same tokens
            if c.baseline_price_model == c.price_model and not cache_hit:
                baseline = served
            else:
                baseline = prices.price(
                    c.baseline_price_model, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens
                )
            cost_usd = served.cost_usd
            baseline_cost_usd = baseline.cost_usd
            if cache_hit:
                savings_cache = baseline_cost_usd
            elif c.auto_routed and baseline_cost_usd is not None and cost_usd is not None:
                savings_routing = baseline_cost_usd - cost_usd
            price = served.price
            if c.compression_tokens_saved and not cache_hit and price is not None:
                savings_compression = c.compression_tokens_saved * price.input_cost_per_token
            price_status = served.status
            if price is not None:
                input_cpt = price.input_cost_per_token
                output_cpt = price.output_cost_per_token
                cache_read_cpt = price.cache_read_cost_per_token
                cache_write_cpt = price.cache_write_cost_per_token

        return (
            SCHEMA_VERSION,
            new_id(),
            c.request_id,
            self.gateway_id,
            key_id,
            customer_id,
            team_id,
            c.end_user,
            c.feature,
            c.tags,
            ts_start,
            ts_start + timedelta(0, elapsed),  # (days, seconds): ~0.15 us cheaper than seconds=elapsed
            c.endpoint,
            c.requested_model,
            c.served_model,
            c.provider,
            c.provider_kind,
            c.is_stream,
            c.is_simulated,
            c.http_status,
            c.error_type,
            c.finish_reason,
            prompt_tokens,
            completion_tokens,
            cached_tokens,
            total_tokens,
            usage_source,
            cost_usd,
            baseline_cost_usd,
            price_status,
            price_table_version,
            input_cpt,
            output_cpt,
            cache_read_cpt,
            latency_ms,
            ttft_ms,
            _ms(upstream_s * 1000),
            _ms(max(elapsed - upstream_s, 0.0) * 1000),
            cache_status,
            c.cache_similarity,
            c.compression_tokens_saved,
            c.routing_decision,
            c.policy_version,
            savings_cache,
            savings_routing,
            savings_compression,
            c.cache_match_id,
            c.compression_status,
            c.baseline_price_model,
            cache_write_tokens,
            cache_write_cpt,
            p_hash,
            p_text,
        )
