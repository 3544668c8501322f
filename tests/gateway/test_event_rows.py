"""Event rows and the metrics they feed are what the dict-based path gave before them.

The writer thread used to build each event as a dict (``CallRecord.to_event``), feed it to prometheus_client
Counters and Histograms one ``inc``/``observe`` at a time, and cut the dicts into Arrow columns with
``RecordBatch.from_pydict``. It now builds a row tuple (``gateway.events.rows``), counts a drain of rows at a time
in plain Python (``gateway.metrics``) and cuts columns from the tuples. The ``legacy_*`` code below is that old
path, copied as it was (commit 8bd6ade), as the reference: same Parquet values in every column, same /metrics text.
"""

from __future__ import annotations

import math
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from contracts.events import EVENT_SCHEMA, FIELD_NAMES, empty_event
from contracts.ids import new_id
from contracts.pricing import ModelPrice, Priced, PriceTable
from gateway.calls import CallRecord
from gateway.events.rows import EventRows, _ms, prompt_hash
from gateway.events.writer import EventWriter
from gateway.keys import ApiKey
from gateway.metrics import ADMIN_AUTH_FAILURE_REASONS, AUTH_FAILURE_REASONS, GatewayMetrics
from gateway.providers.base import Usage

PRICES = PriceTable(
    {
        "cheap": ModelPrice(1e-7, 4e-7, 5e-8),
        "strong": ModelPrice(2.5e-6, 1e-5, 1.25e-6, 3.125e-6),
        "free": ModelPrice(0.0, 0.0, 0.0),
    },
    "test-table-v1",
)
MODELS = ("cheap", "strong", "free", "not-in-table", None)


# -- the old path (reference) ---------------------------------------------------------------------------------


def legacy_to_event(c: CallRecord, prices: PriceTable, *, gateway_id: str, store_prompts: bool) -> dict[str, Any]:
    elapsed = (c.t_end or time.perf_counter()) - c.t0
    ev = empty_event()
    ev.update(
        event_id=new_id(),
        request_id=c.request_id,
        gateway_id=gateway_id,
        ts_start=c.ts_start,
        ts_end=c.ts_start + timedelta(seconds=elapsed),
        endpoint=c.endpoint,
        end_user=c.end_user,
        feature=c.feature,
        tags=c.tags,
        requested_model=c.requested_model,
        served_model=c.served_model,
        provider=c.provider,
        provider_kind=c.provider_kind,
        is_stream=c.is_stream,
        is_simulated=c.is_simulated,
        http_status=c.http_status,
        error_type=c.error_type,
        finish_reason=c.finish_reason,
        usage_source=c.usage_source if c.usage is not None else "none",
        latency_ms=round(elapsed * 1000, 3),
        ttft_ms=round((c.ttft_s if c.ttft_s is not None else elapsed) * 1000, 3),
        upstream_latency_ms=round(c.upstream_s * 1000, 3),
        gateway_overhead_ms=round(max(elapsed - c.upstream_s, 0.0) * 1000, 3),
        routing_decision=c.routing_decision,
        cache_status=c.cache_status,
        cache_similarity=c.cache_similarity,
        cache_match_id=c.cache_match_id,
        compression_tokens_saved=c.compression_tokens_saved,
        compression_status=c.compression_status,
        policy_version=c.policy_version,
        baseline_model=c.baseline_price_model,
    )
    if c.key is not None:
        ev.update(key_id=c.key.key_id, customer_id=c.key.customer_id, team_id=c.key.team_id)
    if c.messages is not None:
        ev["prompt_hash"] = prompt_hash(c.messages)
        if store_prompts:
            ev["prompt_text"] = orjson.dumps(c.messages).decode()
    legacy_price(c, ev, prices)
    return ev


def legacy_price(c: CallRecord, ev: dict[str, Any], prices: PriceTable) -> None:
    u = c.usage
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
    served = c.priced or prices.price(
        c.price_model, u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens
    )
    if c.baseline_price_model == c.price_model and not c.cache_hit:
        baseline = served
    else:
        baseline = prices.price(
            c.baseline_price_model, u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens
        )
    ev["cost_usd"] = served.cost_usd
    ev["baseline_cost_usd"] = baseline.cost_usd
    if c.cache_hit:
        ev["savings_cache_usd"] = baseline.cost_usd
    elif c.auto_routed and baseline.cost_usd is not None and served.cost_usd is not None:
        ev["savings_routing_usd"] = baseline.cost_usd - served.cost_usd
    if c.compression_tokens_saved and not c.cache_hit and served.price is not None:
        ev["savings_compression_usd"] = c.compression_tokens_saved * served.price.input_cost_per_token
    ev["price_status"] = served.status
    if served.price is not None:
        ev["input_cost_per_token"] = served.price.input_cost_per_token
        ev["output_cost_per_token"] = served.price.output_cost_per_token
        ev["cache_read_cost_per_token"] = served.price.cache_read_cost_per_token
        ev["cache_write_cost_per_token"] = served.price.cache_write_cost_per_token


_LATENCY_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)


class LegacyMetrics:
    """The old GatewayMetrics: prometheus_client Counters and Histograms, fed one event at a time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type")
        r = self.registry
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "Time from request received to last byte sent.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from request received to the first content byte.",
            ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per call.",
            ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"),
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "apex_requests", "Calls handled, by HTTP status.", ("gen_ai_request_model", "http_status"), registry=r
        )
        self.cost = Counter(
            "apex_cost_usd",
            "List-price cost of served calls (priced ones).",
            ("gen_ai_provider_name", "gen_ai_request_model"),
            registry=r,
        )
        self.unpriced = Counter(
            "apex_unpriced_calls",
            "Calls whose model has no price (cost unknown, not $0).",
            ("gen_ai_request_model",),
            registry=r,
        )
        self.cache_hits = Counter("apex_cache_hits", "Calls answered from a cache.", ("cache",), registry=r)
        self.upstream_errors = Counter(
            "apex_upstream_errors",
            "Failed upstream calls by error type.",
            ("gen_ai_provider_name", "error_type"),
            registry=r,
        )
        self.auth_failures = Counter(
            "apex_auth_failures",
            "Requests rejected for a missing, unknown or expired key, or throttled after too many of those.",
            ("reason",),
            registry=r,
        )
        self.admin_auth_failures = Counter(
            "apex_admin_auth_failures",
            "Admin API (and /metrics) requests rejected for a wrong master key, or throttled after too many.",
            ("reason",),
            registry=r,
        )
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason)
        for reason in ADMIN_AUTH_FAILURE_REASONS:
            self.admin_auth_failures.labels(reason)
        self.circuit_state = Gauge(
            "apex_circuit_state", "Deployment circuit: 0 closed, 1 half-open, 2 open.", ("deployment",), registry=r
        )

    def observe(self, ev: dict[str, Any]) -> None:
        endpoint = ev["endpoint"]
        op = (
            "chat"
            if endpoint.endswith(("chat/completions", "messages"))
            else ("embeddings" if endpoint.endswith("embeddings") else endpoint)
        )
        provider = ev["provider"] or ""
        model = ev["requested_model"] or ""
        error = ev["error_type"] or ""
        requests = self.requests.labels(model, str(ev["http_status"]))
        duration = self.duration.labels(op, provider, model, error)
        ttft = self.ttft.labels(op, provider, model)
        tokens_in = self.tokens.labels(op, provider, model, "input")
        tokens_out = self.tokens.labels(op, provider, model, "output")
        cost = self.cost.labels(provider, model)
        requests.inc()
        duration.observe(ev["latency_ms"] / 1000)
        if ev["is_stream"] and ev["ttft_ms"] is not None and not error:
            ttft.observe(ev["ttft_ms"] / 1000)
        if ev["prompt_tokens"] is not None:
            tokens_in.observe(ev["prompt_tokens"])
            tokens_out.observe(ev["completion_tokens"] or 0)
        if ev["cost_usd"] is not None:
            cost.inc(ev["cost_usd"])
        elif ev["price_status"] == "unknown":
            self.unpriced.labels(model).inc()
        if ev["cache_status"] and str(ev["cache_status"]).startswith("hit"):
            self.cache_hits.labels(ev["cache_status"]).inc()
        if error.startswith("upstream"):
            self.upstream_errors.labels(provider, error).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def legacy_table(events: list[dict[str, Any]]) -> pa.Table:
    columns = {name: [ev.get(name) for ev in events] for name in FIELD_NAMES}
    return pa.Table.from_batches([pa.RecordBatch.from_pydict(columns, schema=EVENT_SCHEMA)], schema=EVENT_SCHEMA)


# -- random calls over every branch ---------------------------------------------------------------------------


def _key(rng: random.Random) -> ApiKey | None:
    if rng.random() < 0.15:
        return None
    team = rng.choice((None, "team-a"))
    return ApiKey(f"k{rng.randrange(99)}", "n", "sk-...x", f"cust-{rng.randrange(5)}", team, None, 0.0, "2026", None)


def random_call(rng: random.Random) -> CallRecord:
    c = CallRecord(endpoint=rng.choice(("/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/v1/other")))
    c.ts_start = datetime(2026, 11, 28, tzinfo=UTC) + timedelta(
        hours=rng.randrange(24), minutes=rng.randrange(60), microseconds=rng.randrange(10**6)
    )
    c.key = _key(rng)
    c.end_user = rng.choice((None, "u1", "ü-2"))
    c.feature = rng.choice((None, "search"))
    c.tags = rng.choice((None, [], ["a", "b"]))
    c.requested_model = rng.choice(("gpt-4o-mini", "apex/auto", "claude-haiku-4-5", None))
    c.served_model = rng.choice(("gpt-4o-mini-2024-07-18", None))
    c.price_model = rng.choice(MODELS)
    c.baseline_price_model = rng.choice((c.price_model, *MODELS))
    c.provider = rng.choice(("fake", "anthropic", None))
    c.provider_kind = rng.choice(("openai_compatible", "simulated", None))
    c.is_stream = rng.random() < 0.5
    c.is_simulated = rng.random() < 0.5
    c.http_status = rng.choice((200, 200, 200, 400, 429, 499, 502, 504))
    if c.http_status != 200:
        c.error_type = rng.choice(("rate_limit_error", "upstream_error", "upstream_rate_limited", "timeout_error"))
    c.finish_reason = rng.choice(("stop", "length", None))
    if rng.random() < 0.8:
        # token counts on, around and past the histogram's bucket bounds (+Inf included)
        prompt = rng.choice((0, 1, 4, 5, 64, 4096, 5_000_000, rng.randrange(0, 5000)))
        c.usage = Usage(prompt, rng.choice((0, 16, rng.randrange(0, 900))), rng.randrange(0, 3000), rng.randrange(500))
        c.usage_source = rng.choice(("provider", "estimated"))
    else:
        c.usage_source = rng.choice(("none", "provider"))  # a source without usage still writes "none"
    c.ttft_s = rng.choice((None, rng.random() / 10, 0.01, 90.0))
    c.upstream_s = rng.choice((0.0, rng.random() / 5, 5.0))  # 5.0: upstream longer than the call (overhead 0)
    c.messages = rng.choice((None, [{"role": "user", "content": f"q{rng.randrange(9)}", "z": 1, "a": [1.5, None]}]))
    c.routing_decision = rng.choice((None, "auto: weak, score 0.31 < 0.42 at target 0.95"))
    c.cache_status = rng.choice((None, "miss", "hit_exact", "hit_semantic", "shadow_hit", "bypass"))
    c.cache_similarity = rng.choice((None, 0.93))
    c.cache_match_id = rng.choice((None, "m1"))
    c.compression_tokens_saved = rng.choice((None, 0, 37))
    c.compression_status = rng.choice((None, "compressed", "unchanged", "fallback: guard"))
    c.policy_version = rng.choice((None, "lexical-3"))
    c.auto_routed = rng.random() < 0.4
    if rng.random() < 0.7:
        c.close(PRICES)  # the request path prices (and stops the clock); otherwise the writer prices
    # durations on bucket bounds, past the last one, and plain ones
    c.t_end = c.t0 + rng.choice((0.0, 0.01, 0.02, 0.0005, 100.0, rng.random(), rng.random() / 100))
    return c


def calls(n: int, seed: int) -> list[CallRecord]:
    rng = random.Random(seed)
    return [random_call(rng) for _ in range(n)]


def as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(FIELD_NAMES, row, strict=True))


# -- rows -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("store_prompts", [False, True])
def test_rows_are_the_old_events_over_every_branch(store_prompts):
    rows = EventRows(PRICES, gateway_id="gw-1", store_prompts=store_prompts)
    seen = set()
    for call in calls(4000, seed=7):
        expected = legacy_to_event(call, PRICES, gateway_id="gw-1", store_prompts=store_prompts)
        got = as_dict(rows.row(call))
        assert len(got["event_id"]) == 32 and got["event_id"] != expected["event_id"]
        got["event_id"] = expected["event_id"]
        assert got == expected
        # the same types too (a float where the dict has an int would change the Arrow column), and -0.0 stays
        assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]
        assert [math.copysign(1, v) for v in got.values() if type(v) is float] == [
            math.copysign(1, v) for v in expected.values() if type(v) is float
        ]
        seen.update(name for name, value in expected.items() if value is not None)
    # the random calls reached every field (each branch that sets one was taken)
    assert seen == set(FIELD_NAMES) - (set() if store_prompts else {"prompt_text"})


def test_to_event_is_the_row_by_field_name():
    for call in calls(200, seed=5):
        event = call.to_event(PRICES, gateway_id="g", store_prompts=True)
        assert list(event) == list(FIELD_NAMES)
        row = EventRows(PRICES, gateway_id="g", store_prompts=True).row(call)
        assert event | {"event_id": None} == as_dict(row) | {"event_id": None}


def test_row_prices_an_unclosed_call_like_the_old_event():
    call = CallRecord(endpoint="/v1/chat/completions", price_model="strong", baseline_price_model="cheap")
    call.usage = Usage(1000, 100, 200, 50)
    call.auto_routed = True
    call.t_end = call.t0 + 0.25
    assert call.priced is None
    expected = legacy_to_event(call, PRICES, gateway_id="g", store_prompts=False)
    got = as_dict(EventRows(PRICES, gateway_id="g", store_prompts=False).row(call))
    got["event_id"] = expected["event_id"]
    assert got == expected
    assert got["savings_routing_usd"] < 0  # routed to the dearer model: a negative saving, as before


def test_row_without_an_end_time_measures_up_to_now():
    call = CallRecord(endpoint="/v1/chat/completions")
    call.t0 -= 0.5
    got = as_dict(EventRows(PRICES, gateway_id="g", store_prompts=False).row(call))
    assert 500 <= got["latency_ms"] < 5000 and got["ttft_ms"] == got["latency_ms"]
    assert got["ts_end"] - got["ts_start"] >= timedelta(milliseconds=500)
    assert got["price_status"] == "no_usage" and got["usage_source"] == "none"


def test_cached_priced_value_is_used_as_is():
    call = CallRecord(endpoint="/v1/chat/completions", price_model="cheap", baseline_price_model="cheap")
    call.usage = Usage(10, 10)
    call.priced = Priced(0.123, PRICES.lookup("cheap"))  # whatever the request path settled on
    call.t_end = call.t0
    got = as_dict(EventRows(PRICES, gateway_id="g", store_prompts=False).row(call))
    assert got["cost_usd"] == got["baseline_cost_usd"] == 0.123


def _same_float(a: float, b: float) -> bool:
    return (a == b and math.copysign(1, a) == math.copysign(1, b)) or (math.isnan(a) and math.isnan(b))


def test_ms_rounds_exactly_like_round_to_3_digits():
    rng = random.Random(3)
    values = [rng.random() * rng.choice((1e-3, 1, 10, 1e3, 1e5, 1e7)) for _ in range(200_000)]
    # exact ties and their neighbours (k + 0.5 thousandths), where a shortcut through x * 1000 would go wrong
    for k in range(0, 2_000_000, 97):
        for x in ((2 * k + 1) / 2000, k / 1000):
            values += [x, math.nextafter(x, 0), math.nextafter(x, math.inf)]
    values += [m * 2.0**e for e in range(-30, 12) for m in range(1, 300)]  # binary fractions: many exact ties
    values += [0.0, 5e-4, 0.0005, 0.0015, 0.0625, 1e-300, 123456789.0005, 1e12, 1e300, math.inf, math.nan]
    values += [-v for v in values]
    bad = [x for x in values if not _same_float(_ms(x), round(x, 3))]
    assert bad == []


# -- metrics --------------------------------------------------------------------------------------------------


def masked(text: bytes) -> list[str]:
    """/metrics lines with the ``_created`` timestamps (the only values that differ between two runs) masked."""
    return [re.sub(r"(_created\{.*\}|_created) \S+$", r"\1 <t>", line) for line in text.decode().splitlines()]


def test_metrics_render_what_the_prometheus_client_metrics_rendered():
    rows = EventRows(PRICES, gateway_id="gw-1", store_prompts=False)
    legacy, metrics = LegacyMetrics(), GatewayMetrics()
    assert masked(metrics.render()) == masked(legacy.render())  # no calls yet: HELP and TYPE lines only
    batch = []
    for i, call in enumerate(calls(5000, seed=11)):
        legacy.observe(legacy_to_event(call, PRICES, gateway_id="gw-1", store_prompts=False))
        batch.append(rows.row(call))
        if len(batch) == 1 + i % 97:  # batches of all sizes, as drains are
            metrics.observe_rows(batch)
            batch = []
    metrics.observe_rows(batch)
    for m in (legacy, metrics):
        m.auth_failures.labels("invalid_key").inc()
        m.circuit_state.labels("fake/gpt-4o-mini").set(2)
    got, want = masked(metrics.render()), masked(legacy.render())
    assert got == want
    assert len(got) > 1000
    assert any(line.startswith("apex_unpriced_calls_total{") for line in got)
    assert any(line.startswith("apex_upstream_errors_total{") for line in got)
    assert any(line.startswith('apex_cache_hits_total{cache="hit_semantic"}') for line in got)
    assert any('le="+Inf"' in line and not line.endswith(" 0.0") for line in got)


def test_metrics_observe_takes_a_mapping_too():
    legacy, metrics = LegacyMetrics(), GatewayMetrics()
    for call in calls(300, seed=2):
        ev = legacy_to_event(call, PRICES, gateway_id="gw-1", store_prompts=False)
        legacy.observe(ev)
        metrics.observe(ev)
    assert masked(metrics.render()) == masked(legacy.render())


def test_a_negative_cost_is_not_counted_but_the_rest_of_the_event_is():
    # prometheus_client raised on it (and the event was lost); a counter must not go down
    metrics = GatewayMetrics()
    ev = legacy_to_event(calls(1, seed=1)[0], PRICES, gateway_id="g", store_prompts=False)
    ev.update(cost_usd=-1.0, requested_model="m", provider="p", http_status=200)
    metrics.observe(ev)
    text = metrics.render().decode()
    assert 'apex_requests_total{gen_ai_request_model="m",http_status="200"} 1.0' in text
    assert 'apex_cost_usd_total{gen_ai_provider_name="p",gen_ai_request_model="m"} 0.0' in text


# -- end to end: the writer ----------------------------------------------------------------------------------


def read_events(events_dir: Path) -> pa.Table:
    files = sorted(events_dir.glob("date=*/hour=*/*.parquet"))
    for f in files:
        schema = pq.read_schema(f)
        assert schema.equals(EVENT_SCHEMA) and schema.metadata == EVENT_SCHEMA.metadata
    return pa.concat_tables([pq.read_table(f) for f in files]).sort_by("request_id")


@pytest.mark.parametrize("store_prompts", [False, True])
def test_the_writer_writes_and_counts_what_the_old_path_did(tmp_path, store_prompts):
    """Calls through the writer as the gateway wires it (rows, metrics a drain at a time) against the old
    events: every column of every row, and the /metrics text."""
    batch = calls(3000, seed=23 if store_prompts else 29)
    rows = EventRows(PRICES, gateway_id="gw-1", store_prompts=store_prompts)
    metrics, legacy = GatewayMetrics(), LegacyMetrics()
    observed = []

    def observe(drained: list[tuple[Any, ...]]) -> None:
        observed.append(len(drained))
        metrics.observe_rows(drained)

    w = EventWriter(tmp_path, gateway_id="gw-1", flush_rows=700, flush_seconds=60, prepare=rows.row, observe=observe)
    expected = []
    for i, call in enumerate(batch):
        w.record(call)
        ev = legacy_to_event(call, PRICES, gateway_id="gw-1", store_prompts=store_prompts)
        legacy.observe(ev)
        expected.append(ev)
        if i % 500 == 0:
            time.sleep(0.02)  # let a few drains happen on the way
    w.close()
    assert w.snapshot()["written"] == len(batch) and w.snapshot()["dropped"] == 0
    assert sum(observed) == len(batch) and max(observed) <= 512

    got, want = read_events(tmp_path), legacy_table(expected).sort_by("request_id")
    assert got.num_rows == want.num_rows == len(batch)
    assert len(set(got["event_id"].to_pylist())) == len(batch)
    for name in FIELD_NAMES:
        if name != "event_id":
            assert got[name].equals(want[name]), name
    assert masked(metrics.render()) == masked(legacy.render())


def test_the_written_files_are_smaller_or_equal_and_read_the_same(tmp_path):
    """Dictionary encoding is off for the columns unique per event; the values read back are the same."""
    rows = EventRows(PRICES, gateway_id="gw-1", store_prompts=False)
    w = EventWriter(tmp_path / "new", gateway_id="gw-1", flush_seconds=60, prepare=rows.row)
    events = []
    for call in calls(2000, seed=31):
        call.ts_start = call.ts_start.replace(hour=13)  # one file
        w.record(call)
        events.append(legacy_to_event(call, PRICES, gateway_id="gw-1", store_prompts=False))
    w.close()
    (new_file,) = (tmp_path / "new").glob("date=*/hour=*/*.parquet")
    old_file = tmp_path / "old.parquet"
    pq.write_table(legacy_table(events), old_file, compression="zstd")
    assert new_file.stat().st_size <= old_file.stat().st_size
    got, want = pq.read_table(new_file).sort_by("request_id"), pq.read_table(old_file).sort_by("request_id")
    assert got.drop_columns(["event_id"]).equals(want.drop_columns(["event_id"]))
