"""Synthetic gateway events that honour event contract v1, for tests, demos and the pipeline scale bench.

Columns are drawn with numpy and written with pyarrow against ``EVENT_SCHEMA``; a million events take a few
seconds. Files land where the gateway puts them: ``date=YYYY-MM-DD/hour=HH/events-synthetic-<seq>.parquet``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contracts.events import EVENT_SCHEMA, PRICE_STATUSES, SCHEMA_VERSION, USAGE_SOURCES

__all__ = ["GATEWAY_ID", "PRICES", "SCHEMA_FILE_NAME", "UNKNOWN_MODEL", "write_synthetic_events"]

GATEWAY_ID = "synthetic"
SCHEMA_FILE_NAME = f"_schema_v{SCHEMA_VERSION}.parquet"
PRICE_TABLE_VERSION = "litellm-synthetic-000000000000"
UNKNOWN_MODEL = "acme-llama-3-70b"

_ERROR_RATE = 0.03
_UNKNOWN_RATE = 0.01
_SIMULATED_RATE = 0.05
_ROUTED_RATE = 0.10
_ANONYMOUS_RATE = 0.10
_COMPRESSION_RATE = 0.15


@dataclass(frozen=True)
class _Price:
    input: float
    output: float
    cache_read: float


# USD per token, close to list prices; the synthetic price table, not the gateway's.
PRICES: dict[str, _Price] = {
    "gpt-4o": _Price(2.5e-6, 10e-6, 1.25e-6),
    "gpt-4o-mini": _Price(0.15e-6, 0.6e-6, 0.075e-6),
    "claude-sonnet-4-5": _Price(3e-6, 15e-6, 0.3e-6),
    "gemini-2.5-flash": _Price(0.3e-6, 2.5e-6, 0.075e-6),
}
_MODELS = (*PRICES, UNKNOWN_MODEL)
_MODEL_WEIGHTS = np.array([0.30, 0.35, 0.20, 0.14, 0.0])
_MODEL_WEIGHTS[:-1] *= (1 - _UNKNOWN_RATE) / _MODEL_WEIGHTS[:-1].sum()
_MODEL_WEIGHTS[-1] = _UNKNOWN_RATE
_PROVIDERS = ("openai", "openai", "anthropic", "gemini", "selfhosted")
_PROVIDER_KINDS = ("openai", "openai", "openai_compatible", "openai_compatible", "openai_compatible")
# Routing sends some gpt-4o / claude traffic to a cheaper model of the same family.
_ROUTE_TO = {"gpt-4o": "gpt-4o-mini", "claude-sonnet-4-5": "gemini-2.5-flash"}
# For ``escalate_customers`` routing also moves some gpt-4o-mini calls up to a dearer model (negative savings).
_ESCALATE = ("gpt-4o-mini", "claude-sonnet-4-5")

_CUSTOMERS = ("cust_acme", "cust_globex", "cust_initech")
_CUSTOMER_WEIGHTS = np.array([0.5, 0.3, 0.2])
_TEAMS = ("search", "support", "growth", None)
_FEATURES = ("chat", "summarize", "classify", "extract", None)
_USERS_PER_CUSTOMER = 25
_KEYS_PER_CUSTOMER = 4
_ENDPOINTS = ("/v1/chat/completions", "/v1/messages", "/v1/completions")
_ENDPOINT_WEIGHTS = np.array([0.85, 0.12, 0.03])
_ERRORS = ((429, "rate_limit_error"), (500, "upstream_error"), (502, "upstream_error"))
_FINISH = ("stop", "length", "tool_calls")
_CACHE_STATUSES = ("miss", "hit_exact", "hit_semantic", "bypass")
_CACHE_WEIGHTS = np.array([0.88, 0.05, 0.03, 0.04])
_TAGS = ("prod", "beta", "batch", "eval", "internal")
_PROMPT_POOL = 5_000


def write_synthetic_events(
    events_dir: Path,
    n: int,
    *,
    seed: int = 0,
    start: datetime | None = None,
    hours: int = 24,
    escalate_customers: tuple[str, ...] = (),
) -> list[Path]:
    """Write ``n`` events spread uniformly over ``hours`` hours from ``start``; return the files written.

    ``start`` defaults to ``hours`` hours before the current hour (UTC). Each call appends new files
    (the next free ``<seq>`` in each hour directory), as a gateway would; it never rewrites existing ones.

    Savings by lever: cache hits cost 0 and claim the requested model's cost (``savings_cache_usd``); routed
    calls claim baseline - served cost (``savings_routing_usd``); about 15% of the other successful calls were
    compressed (``compression_tokens_saved`` x input price = ``savings_compression_usd``). For the customers in
    ``escalate_customers`` routing only escalates gpt-4o-mini calls to a dearer model, so their routing savings
    net negative.
    """
    if n < 0 or hours < 1:
        raise ValueError("n must be >= 0 and hours >= 1")
    events_dir = Path(events_dir)
    events_dir.mkdir(parents=True, exist_ok=True)
    _ensure_schema_file(events_dir)
    if n == 0:
        return []
    if start is None:
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)
    elif start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    table = _events_table(n, np.random.default_rng(seed), start, hours, escalate_customers)
    return _write_hourly(events_dir, table)


def _ensure_schema_file(events_dir: Path) -> None:
    path = events_dir / SCHEMA_FILE_NAME
    if not path.exists():
        _atomic_write(EVENT_SCHEMA.empty_table(), path)


def _atomic_write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _hex_ids(rng: np.random.Generator, n: int, nbytes: int = 16) -> pa.Array:
    raw = np.frombuffer(rng.bytes(nbytes * n), dtype=np.uint8).reshape(n, nbytes).copy()
    if nbytes == 16:  # shape them as uuid4 (version and variant bits)
        raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
        raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    text = raw.tobytes().hex().encode()
    return pa.array(np.frombuffer(text, dtype=f"S{2 * nbytes}")).cast(pa.string())


def _pick(values: tuple[str | None, ...], idx: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """``values[idx]`` as a string array, null where ``null_mask`` is true (no per-row Python objects)."""
    picked = pa.array(values, pa.string()).take(pa.array(idx))
    if null_mask is not None:
        picked = pc.if_else(pa.array(null_mask), pa.scalar(None, pa.string()), picked)
    return picked


def _constant(value: str, n: int, null_mask: np.ndarray | None = None) -> pa.Array:
    return _pick((value,), np.zeros(n, dtype=np.int64), null_mask)


def _nullable(values: np.ndarray, mask: np.ndarray) -> pa.Array:
    """``values`` with nulls where ``mask`` is true."""
    return pa.array(values, mask=mask)


def _events_table(
    n: int, rng: np.random.Generator, start: datetime, hours: int, escalate_customers: tuple[str, ...] = ()
) -> pa.Table:
    start_us = int(start.timestamp() * 1_000_000)
    ts_start = np.sort(start_us + rng.integers(0, hours * 3_600_000_000, n, dtype=np.int64))

    customer = rng.choice(len(_CUSTOMERS), n, p=_CUSTOMER_WEIGHTS)
    user_no = rng.zipf(1.6, n) % _USERS_PER_CUSTOMER
    anonymous = rng.random(n) < _ANONYMOUS_RATE
    users = tuple(f"{c}_user_{i}" for c in _CUSTOMERS for i in range(_USERS_PER_CUSTOMER))
    keys = tuple(f"{c}_key_{i}" for c in _CUSTOMERS for i in range(_KEYS_PER_CUSTOMER))
    key_no = rng.integers(0, _KEYS_PER_CUSTOMER, n)

    requested = rng.choice(len(_MODELS), n, p=_MODEL_WEIGHTS)
    served = requested.copy()
    routed = rng.random(n) < _ROUTED_RATE
    for src, dst in _ROUTE_TO.items():
        move = routed & (requested == _MODELS.index(src))
        served[move] = _MODELS.index(dst)
    # an escalating customer's routing only moves calls up: its routing savings net negative
    escalating = np.isin(customer, [_CUSTOMERS.index(c) for c in escalate_customers if c in _CUSTOMERS])
    served[escalating] = requested[escalating]
    served[routed & escalating & (requested == _MODELS.index(_ESCALATE[0]))] = _MODELS.index(_ESCALATE[1])
    routed = served != requested
    unknown = served == _MODELS.index(UNKNOWN_MODEL)
    simulated = (rng.random(n) < _SIMULATED_RATE) & ~unknown
    # index len(_MODELS) in the provider tables is the simulated provider
    provider_idx = np.where(simulated, len(_MODELS), served)

    is_error = rng.random(n) < _ERROR_RATE
    error_pick = rng.integers(0, len(_ERRORS), n)
    http_status = np.where(is_error, np.array([c for c, _ in _ERRORS])[error_pick], 200).astype(np.int16)
    is_stream = rng.random(n) < 0.35
    cache = rng.choice(len(_CACHE_STATUSES), n, p=_CACHE_WEIGHTS)
    cache[is_error] = _CACHE_STATUSES.index("miss")
    cache_hit = (cache == 1) | (cache == 2)

    prompt = np.maximum(1, rng.lognormal(6.5, 1.0, n)).astype(np.int64)
    completion = np.maximum(1, rng.lognormal(5.0, 0.9, n)).astype(np.int64)
    cached = np.where(rng.random(n) < 0.2, (prompt * rng.uniform(0.2, 0.9, n)).astype(np.int64), 0)
    total = prompt + completion
    no_tokens = is_error
    estimated = (rng.random(n) < 0.1) | (is_stream & (rng.random(n) < 0.2))
    usage_source = np.where(no_tokens, 2, np.where(estimated, 1, 0))  # index into USAGE_SOURCES

    def unit(field: str, models: np.ndarray) -> np.ndarray:
        table = np.array([getattr(PRICES[m], field) if m in PRICES else np.nan for m in _MODELS])
        return table[models]

    in_price, out_price, read_price = (unit(f, served) for f in ("input", "output", "cache_read"))
    list_cost = (prompt - cached) * in_price + cached * read_price + completion * out_price
    baseline = (
        (prompt - cached) * unit("input", requested)
        + cached * unit("cache_read", requested)
        + completion * unit("output", requested)
    )
    cost = np.where(cache_hit, 0.0, list_cost)
    savings_cache = np.where(cache_hit, baseline, 0.0)
    savings_routing = np.where(~cache_hit & routed, baseline - list_cost, 0.0)
    priced = ~no_tokens & ~unknown
    price_status = np.where(no_tokens, 2, np.where(unknown, 1, 0))  # index into PRICE_STATUSES

    upstream = rng.lognormal(6.3, 0.7, n)
    overhead = rng.lognormal(0.3, 0.5, n)
    latency = np.where(cache_hit, overhead, upstream + overhead)
    ttft = np.where(is_stream & ~cache_hit, overhead + upstream * rng.uniform(0.05, 0.3, n), latency)
    ts_end = ts_start + (latency * 1000).astype(np.int64)

    tag_counts = rng.integers(0, 3, n)
    offsets = np.concatenate([[0], np.cumsum(tag_counts)]).astype(np.int32)
    tags = pa.ListArray.from_arrays(pa.array(offsets), _pick(_TAGS, rng.integers(0, len(_TAGS), int(offsets[-1]))))
    prompt_pool = _hex_ids(rng, _PROMPT_POOL, 32)
    ts_type = EVENT_SCHEMA.field("ts_start").type

    columns: dict[str, pa.Array] = {
        "schema_version": pa.array(np.full(n, SCHEMA_VERSION, dtype=np.int16)),
        "event_id": _hex_ids(rng, n),
        "request_id": pc.binary_join_element_wise("req_", _hex_ids(rng, n, 12), ""),
        "gateway_id": _constant(GATEWAY_ID, n),
        "key_id": _pick(keys, customer * _KEYS_PER_CUSTOMER + key_no),
        "customer_id": _pick(_CUSTOMERS, customer),
        "team_id": _pick(_TEAMS, rng.integers(0, len(_TEAMS), n)),
        "end_user": _pick(users, customer * _USERS_PER_CUSTOMER + user_no, anonymous),
        "feature": _pick(_FEATURES, rng.integers(0, len(_FEATURES), n)),
        "tags": tags,
        "ts_start": pa.array(ts_start, pa.timestamp("us")).cast(ts_type),
        "ts_end": pa.array(ts_end, pa.timestamp("us")).cast(ts_type),
        "endpoint": _pick(_ENDPOINTS, rng.choice(len(_ENDPOINTS), n, p=_ENDPOINT_WEIGHTS)),
        "requested_model": _pick(_MODELS, requested),
        "served_model": _pick(_MODELS, served),
        "provider": _pick((*_PROVIDERS, "simulated"), provider_idx),
        "provider_kind": _pick((*_PROVIDER_KINDS, "simulated"), provider_idx),
        "is_stream": pa.array(is_stream),
        "is_simulated": pa.array(simulated),
        "http_status": pa.array(http_status),
        "error_type": _pick(tuple(t for _, t in _ERRORS), error_pick, ~is_error),
        "finish_reason": _pick(_FINISH, rng.choice(len(_FINISH), n, p=[0.9, 0.07, 0.03]), is_error),
        "prompt_tokens": _nullable(prompt, no_tokens),
        "completion_tokens": _nullable(completion, no_tokens),
        "cached_tokens": _nullable(cached, no_tokens),
        "total_tokens": _nullable(total, no_tokens),
        "usage_source": _pick(USAGE_SOURCES, usage_source),
        "cost_usd": _nullable(cost, ~priced),
        "baseline_cost_usd": _nullable(baseline, ~priced | np.isnan(baseline)),
        "price_status": _pick(PRICE_STATUSES, price_status),
        "price_table_version": _constant(PRICE_TABLE_VERSION, n, ~priced),
        "input_cost_per_token": _nullable(in_price, ~priced),
        "output_cost_per_token": _nullable(out_price, ~priced),
        "cache_read_cost_per_token": _nullable(read_price, ~priced),
        "latency_ms": pa.array(latency),
        "ttft_ms": pa.array(ttft),
        "upstream_latency_ms": _nullable(np.where(cache_hit, 0.0, upstream), cache_hit),
        "gateway_overhead_ms": pa.array(overhead),
        "cache_status": _pick(_CACHE_STATUSES, cache),
        "cache_similarity": _nullable(rng.uniform(0.92, 0.99, n), cache != 2),
        "compression_tokens_saved": pa.nulls(n, pa.int64()),
        "routing_decision": _constant("cheaper_same_quality", n, ~routed),
        "policy_version": _constant("policy-synthetic-1", n, ~routed),
        "savings_cache_usd": _nullable(savings_cache, ~priced | ~cache_hit),
        "savings_routing_usd": _nullable(savings_routing, ~priced | ~routed | cache_hit),
        "savings_compression_usd": pa.nulls(n, pa.float64()),
        "prompt_hash": prompt_pool.take(pa.array(rng.integers(0, _PROMPT_POOL, n))),
        "prompt_text": pa.nulls(n, pa.string()),
    }
    # compression, drawn last so the other columns stay what they were for a given seed
    compressed = (rng.random(n) < _COMPRESSION_RATE) & priced & ~cache_hit
    tokens_saved = (prompt * rng.uniform(0.1, 0.4, n)).astype(np.int64)
    columns["compression_tokens_saved"] = _nullable(tokens_saved, ~compressed)
    columns["savings_compression_usd"] = _nullable(tokens_saved * in_price, ~compressed)
    # v2 columns: model names as the baseline; no prompt-cache writes; compression always succeeded
    columns["baseline_model"] = _pick(_MODELS, requested)
    columns["cache_write_tokens"] = _nullable(np.zeros(n, dtype=np.int64), no_tokens)
    columns["cache_write_cost_per_token"] = _nullable(in_price, ~priced)
    columns["compression_status"] = _constant("compressed", n, ~compressed)
    columns["cache_match_id"] = pa.nulls(n, pa.string())
    arrays = [columns[f.name].cast(f.type) for f in EVENT_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def _write_hourly(events_dir: Path, table: pa.Table) -> list[Path]:
    """Split the (ts_start-sorted) table into one file per UTC hour."""
    hour_us = 3_600_000_000
    micros = table.column("ts_start").cast(pa.int64()).to_numpy()
    buckets = micros // hour_us
    bounds = np.flatnonzero(np.diff(buckets)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(buckets)]])
    written = []
    for lo, hi in zip(starts, ends, strict=True):
        hour = datetime.fromtimestamp(int(buckets[lo]) * 3600, UTC)
        folder = events_dir / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"events-{GATEWAY_ID}-{_next_seq(folder)}.parquet"
        _atomic_write(table.slice(lo, hi - lo), path)
        written.append(path)
    return written


def _next_seq(folder: Path) -> int:
    prefix = f"events-{GATEWAY_ID}-"
    seqs = [int(p.stem[len(prefix) :]) for p in folder.glob(f"{prefix}*.parquet") if p.stem[len(prefix) :].isdigit()]
    return max(seqs, default=-1) + 1
