"""Event contract v2: one row per call the gateway accepted, written to Parquet.

This module is the single source of truth for the event schema. The analytics side (dbt source
``gateway.events``, the great-expectations check, the dashboard) reads files written against it; bump
``SCHEMA_VERSION`` and add a column (never rename or retype one) when it changes.

Files: ``<events_dir>/date=YYYY-MM-DD/hour=HH/events-<gateway_id>-<seq>.parquet`` (UTC, by ``ts_start``),
plus one zero-row ``_schema_v<N>.parquet`` at the root so readers always find the columns.

History: v2 added ``cache_match_id``, ``compression_status``, ``baseline_model`` (the optimizers) and
``cache_write_tokens``, ``cache_write_cost_per_token`` (Anthropic prompt-cache writes); files written
by a v1 gateway lack them and read as null (readers use ``union_by_name``).

Field by field (nullable unless marked *required*):

ids and attribution
  schema_version          *required* int16. Always ``SCHEMA_VERSION``.
  event_id                *required* string. Unique id of this event (uuid4 hex).
  request_id              *required* string. Also returned to the client as ``x-request-id``.
  gateway_id              *required* string. Which gateway process wrote the event.
  key_id                  string. Virtual key id (never the key itself); null when auth failed.
  customer_id             string. Apex customer (tenant) the key belongs to; who is billed.
  team_id                 string. Team inside the customer, when the key has one.
  end_user                string. The request's ``user`` field or ``x-apex-user`` header.
  feature                 string. ``x-apex-feature`` header or ``metadata.feature``.
  tags                    list<string>. ``x-apex-tags`` header (comma separated).

time (UTC, microseconds)
  ts_start                *required* timestamp. When the gateway received the request.
  ts_end                  *required* timestamp. When the response (last byte of a stream) was sent.

what was called
  endpoint                *required* string. e.g. ``/v1/chat/completions``.
  requested_model         string. Model name the client asked for.
  served_model            string. Upstream model that actually answered.
  provider                string. Configured provider name that served the call.
  provider_kind           string. ``openai`` | ``openai_compatible`` | ``simulated`` | ...
  is_stream               *required* bool. Client asked for SSE.
  is_simulated            *required* bool. Served by the offline simulated provider (not real spend).

outcome
  http_status             *required* int16. Status returned to the client (one of ``KNOWN_HTTP_STATUSES``;
                          499 = the client disconnected mid-stream).
  error_type              string. Null on success; else the OpenAI-style error type
                          (``invalid_request_error``, ``authentication_error``, ``rate_limit_error``,
                          ``upstream_error``, ``timeout_error``, ...).
  finish_reason           string. From the provider (``stop``, ``length``, ``tool_calls``...).

tokens
  prompt_tokens           int64. Input tokens (including cached ones).
  completion_tokens       int64. Output tokens.
  cached_tokens           int64. Input tokens the provider served from its prompt cache.
  cache_write_tokens      int64. (v2) Input tokens written to the provider's prompt cache (Anthropic), billed at
                          the cache-write rate. Plain input = prompt − cached − cache_write.
  total_tokens            int64. prompt + completion.
  usage_source            *required* string. ``provider`` (reported by the upstream), ``estimated``
                          (counted with tiktoken by the gateway) or ``none`` (no tokens, e.g. rejected).

money (USD)
  cost_usd                float64. What this call cost at list price. Null when the price is unknown —
                          never 0 for an unknown model.
  baseline_cost_usd       float64. What the requested model would have cost for the same tokens
                          (the basis for savings). Null when unknown.
  price_status            *required* string. ``priced`` | ``unknown`` (model not in the price table)
                          | ``no_usage`` (nothing billable happened, e.g. a rejected request).
  price_table_version     string. Which price table priced the event (``litellm-<version>-<sha12>``).
  input_cost_per_token    float64. Unit prices used, so a line can be re-derived by hand.
  output_cost_per_token   float64.
  cache_read_cost_per_token float64.
  cache_write_cost_per_token float64. (v2)

latency (milliseconds)
  latency_ms              float64. Request received → last byte sent.
  ttft_ms                 float64. Request received → first content byte sent (streams; = latency otherwise).
  upstream_latency_ms     float64. Time spent waiting on the provider.
  gateway_overhead_ms     float64. latency_ms − upstream_latency_ms.

optimizations (null when no optimizer was asked to act on the call)
  cache_status            string. ``miss`` | ``hit_exact`` | ``hit_semantic`` | ``shadow_hit`` | ``bypass``.
                          ``shadow_hit``: the semantic cache had a verified match but is in shadow mode, so the
                          call went upstream; ``bypass``: opted in but not eligible (e.g. multi-turn, sampled).
  cache_similarity        float64. Cosine similarity of the semantic cache's best candidate (hits, shadow hits
                          and rejected candidates alike, so precision can be judged before serving).
  cache_match_id          string. (v2) Entry id of that candidate.
  compression_tokens_saved int64. Prompt tokens removed by compression (0 when the guard sent the original).
  compression_status      string. (v2) ``compressed`` | ``unchanged`` | ``fallback: <reason>``.
  routing_decision        string. Why the served model was chosen: learned routing's decision (``auto: weak,
                          score 0.31 < 0.42 at target 0.95``) or the dispatcher's retries/fallbacks.
  policy_version          string. Version of the routing policy that decided (``policy_version`` in its file).
  baseline_model          string. (v2) Price-table name of the model the request asked for, the savings baseline
                          (for ``apex/auto``, the strong model).
  savings_cache_usd       float64. Savings claimed by lever, vs. the baseline model: a cache hit saves the
                          baseline cost of the answer served.
  savings_routing_usd     float64. baseline-model cost − served-model cost for the same tokens.
  savings_compression_usd float64. compression_tokens_saved × the served model's input price.

content (privacy)
  prompt_hash             string. sha256 of the canonical JSON of the messages (always written).
  prompt_text             string. The messages as JSON; only when ``gateway.store_prompts`` is true.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "EVENT_SCHEMA",
    "FIELD_NAMES",
    "KNOWN_HTTP_STATUSES",
    "PRICE_STATUSES",
    "SCHEMA_VERSION",
    "USAGE_SOURCES",
    "empty_event",
]

SCHEMA_VERSION = 2

_TS = pa.timestamp("us", tz="UTC")

EVENT_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("gateway_id", pa.string(), nullable=False),
        pa.field("key_id", pa.string()),
        pa.field("customer_id", pa.string()),
        pa.field("team_id", pa.string()),
        pa.field("end_user", pa.string()),
        pa.field("feature", pa.string()),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("ts_start", _TS, nullable=False),
        pa.field("ts_end", _TS, nullable=False),
        pa.field("endpoint", pa.string(), nullable=False),
        pa.field("requested_model", pa.string()),
        pa.field("served_model", pa.string()),
        pa.field("provider", pa.string()),
        pa.field("provider_kind", pa.string()),
        pa.field("is_stream", pa.bool_(), nullable=False),
        pa.field("is_simulated", pa.bool_(), nullable=False),
        pa.field("http_status", pa.int16(), nullable=False),
        pa.field("error_type", pa.string()),
        pa.field("finish_reason", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("cached_tokens", pa.int64()),
        pa.field("total_tokens", pa.int64()),
        pa.field("usage_source", pa.string(), nullable=False),
        pa.field("cost_usd", pa.float64()),
        pa.field("baseline_cost_usd", pa.float64()),
        pa.field("price_status", pa.string(), nullable=False),
        pa.field("price_table_version", pa.string()),
        pa.field("input_cost_per_token", pa.float64()),
        pa.field("output_cost_per_token", pa.float64()),
        pa.field("cache_read_cost_per_token", pa.float64()),
        pa.field("latency_ms", pa.float64()),
        pa.field("ttft_ms", pa.float64()),
        pa.field("upstream_latency_ms", pa.float64()),
        pa.field("gateway_overhead_ms", pa.float64()),
        pa.field("cache_status", pa.string()),
        pa.field("cache_similarity", pa.float64()),
        pa.field("compression_tokens_saved", pa.int64()),
        pa.field("routing_decision", pa.string()),
        pa.field("policy_version", pa.string()),
        pa.field("savings_cache_usd", pa.float64()),
        pa.field("savings_routing_usd", pa.float64()),
        pa.field("savings_compression_usd", pa.float64()),
        pa.field("cache_match_id", pa.string()),
        pa.field("compression_status", pa.string()),
        pa.field("baseline_model", pa.string()),
        pa.field("cache_write_tokens", pa.int64()),
        pa.field("cache_write_cost_per_token", pa.float64()),
        pa.field("prompt_hash", pa.string()),
        pa.field("prompt_text", pa.string()),
    ],
    metadata={"apex.schema_version": str(SCHEMA_VERSION)},
)

FIELD_NAMES: tuple[str, ...] = tuple(EVENT_SCHEMA.names)

USAGE_SOURCES = ("provider", "estimated", "none")
# Statuses an event may carry: success, the gateway's own rejections (401s are counted, not logged), relayed
# upstream failures, and 499 for a client that went away mid-stream (nginx's convention).
KNOWN_HTTP_STATUSES = (200, 400, 401, 402, 403, 404, 408, 409, 413, 415, 422, 429, 499, 500, 502, 503, 504)
PRICE_STATUSES = ("priced", "unknown", "no_usage")


def empty_event() -> dict[str, object]:
    """A dict with every field present (None), so writers never miss a column."""
    event: dict[str, object] = dict.fromkeys(FIELD_NAMES)
    event["schema_version"] = SCHEMA_VERSION
    return event
