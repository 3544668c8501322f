"""Prometheus metrics for ``GET /metrics``, named after the OpenTelemetry GenAI conventions where they exist.

OTel name                                  → Prometheus name here
gen_ai.server.request.duration (s)         → gen_ai_server_request_duration_seconds
gen_ai.server.time_to_first_token (s)      → gen_ai_server_time_to_first_token_seconds
gen_ai.client.token.usage (tokens)         → gen_ai_client_token_usage (histogram, label gen_ai_token_type)
Labels use the OTel attribute names with dots as underscores: gen_ai_operation_name, gen_ai_provider_name,
gen_ai_request_model, gen_ai_response_model, error_type. Apex's own series are prefixed ``apex_``.

Each gateway process has its own registry, so tests (and several apps in one process) never share counters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)


class _WriterCollector(Collector):
    def __init__(self, snapshot: Callable[[], Mapping[str, int]]) -> None:
        self._snapshot = snapshot

    def collect(self):  # type: ignore[no-untyped-def]
        snap = self._snapshot()
        depth = GaugeMetricFamily("apex_event_queue_depth", "Events waiting in memory for the Parquet writer.")
        depth.add_metric([], snap.get("queued", 0))
        yield depth
        for name, help_text in (
            ("written", "Events written to Parquet."),
            ("spilled", "Events that found the queue full and went to the spill file (not lost)."),
            ("dropped", "Events lost: the queue was full and the spill file could not be written."),
        ):
            g = GaugeMetricFamily(f"apex_events_{name}", help_text)
            g.add_metric([], snap.get(name, 0))
            yield g


@dataclass(frozen=True, slots=True)
class _Series:
    requests: Any
    duration: Any
    ttft: Any
    tokens_in: Any
    tokens_out: Any
    cost: Any


class GatewayMetrics:
    def __init__(self) -> None:
        self._memo: dict[tuple[str, str, str, str, int], _Series] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type")
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "Time from request received to last byte sent.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from request received to the first content byte.",
            ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per call.",
            ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"),
            buckets=_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "apex_requests",
            "Calls handled, by HTTP status.",
            ("gen_ai_request_model", "http_status"),
            registry=self.registry,
        )
        self.cost = Counter(
            "apex_cost_usd",
            "List-price cost of served calls (priced ones).",
            ("gen_ai_provider_name", "gen_ai_request_model"),
            registry=self.registry,
        )
        self.unpriced = Counter(
            "apex_unpriced_calls",
            "Calls whose model has no price (cost unknown, not $0).",
            ("gen_ai_request_model",),
            registry=self.registry,
        )
        self.cache_hits = Counter("apex_cache_hits", "Calls answered from a cache.", ("cache",), registry=self.registry)
        self.upstream_errors = Counter(
            "apex_upstream_errors",
            "Failed upstream calls by error type.",
            ("gen_ai_provider_name", "error_type"),
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "apex_auth_failures", "Requests rejected for a missing or unknown key.", registry=self.registry
        )
        self.circuit_state = Gauge(
            "apex_circuit_state",
            "Deployment circuit: 0 closed, 1 half-open, 2 open.",
            ("deployment",),
            registry=self.registry,
        )

    def watch_writer(self, snapshot: Callable[[], Mapping[str, int]]) -> None:
        self.registry.register(_WriterCollector(snapshot))

    def _series(self, op: str, provider: str, model: str, error: str, status: int) -> _Series:
        # prometheus_client's labels() takes a lock and builds tuples each time; the writer thread calls this
        # for every event, so the handful of children per (model, provider, outcome) are looked up once.
        key = (op, provider, model, error, status)
        found = self._memo.get(key)
        if found is None:
            found = _Series(
                requests=self.requests.labels(model, str(status)),
                duration=self.duration.labels(op, provider, model, error),
                ttft=self.ttft.labels(op, provider, model),
                tokens_in=self.tokens.labels(op, provider, model, "input"),
                tokens_out=self.tokens.labels(op, provider, model, "output"),
                cost=self.cost.labels(provider, model),
            )
            if len(self._memo) < 50_000:  # bounded: clients choose model names
                self._memo[key] = found
        return found

    def observe(self, ev: Mapping[str, Any]) -> None:
        endpoint = ev["endpoint"]
        op = (
            "chat"
            if endpoint.endswith(("chat/completions", "messages"))
            else ("embeddings" if endpoint.endswith("embeddings") else endpoint)
        )
        provider = ev["provider"] or ""
        model = ev["requested_model"] or ""
        error = ev["error_type"] or ""
        series = self._series(op, provider, model, error, ev["http_status"])
        series.requests.inc()
        series.duration.observe(ev["latency_ms"] / 1000)
        if ev["is_stream"] and ev["ttft_ms"] is not None and not error:
            series.ttft.observe(ev["ttft_ms"] / 1000)
        if ev["prompt_tokens"] is not None:
            series.tokens_in.observe(ev["prompt_tokens"])
            series.tokens_out.observe(ev["completion_tokens"] or 0)
        if ev["cost_usd"] is not None:
            series.cost.inc(ev["cost_usd"])
        elif ev["price_status"] == "unknown":
            self.unpriced.labels(model).inc()
        if ev["cache_status"] and str(ev["cache_status"]).startswith("hit"):
            self.cache_hits.labels(ev["cache_status"]).inc()
        if error.startswith("upstream"):
            self.upstream_errors.labels(provider, error).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
