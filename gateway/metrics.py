"""Prometheus metrics for ``GET /metrics``, named after the OpenTelemetry GenAI conventions where they exist.

(Just over 400 lines: the series, their bounded labels and the collector that renders them are one contract.)

OTel name                                  → Prometheus name here
gen_ai.server.request.duration (s)         → gen_ai_server_request_duration_seconds
gen_ai.server.time_to_first_token (s)      → gen_ai_server_time_to_first_token_seconds
gen_ai.client.token.usage (tokens)         → gen_ai_client_token_usage (histogram, label gen_ai_token_type)
Labels use the OTel attribute names with dots as underscores: gen_ai_operation_name, gen_ai_provider_name,
gen_ai_request_model, gen_ai_response_model, error_type. Apex's own series are prefixed ``apex_``.

The per-call series (all but ``apex_auth_failures``, ``apex_admin_auth_failures`` and ``apex_circuit_state``)
are fed from the events, by the event writer's thread, a drain at a time (``observe_rows``). They are plain
Python numbers rendered by a custom collector rather than prometheus_client Counters and Histograms:
``inc``/``observe`` take a lock and run a few microseconds of Python each, several times per event, on the thread
that shares the request path's core. The text rendered is what those Counters and Histograms showed: same names,
labels, buckets, series order and values (sums are added up in the same order), ``_created`` samples included.

Label values are bounded, since clients choose some of them (the requested model above all): a gateway built
with its configured model and provider names (``GatewayMetrics(models=..., providers=...)``) labels anything else
``other``, and every label value is cut to ``MAX_LABEL_CHARS``. A scrape copies the numbers under a lock and
renders the text outside it; the app renders in a thread, so a large registry does not stall the event loop.

Each gateway process has its own registry, so tests (and several apps in one process) never share counters.
"""

from __future__ import annotations

import operator
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client import metrics as _prometheus_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from contracts.events import FIELD_NAMES

__all__ = ["ADMIN_AUTH_FAILURE_REASONS", "AUTH_FAILURE_REASONS", "MAX_LABEL_CHARS", "OTHER", "GatewayMetrics"]

_LATENCY_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_MAX_MEMO = 50_000
MAX_LABEL_CHARS = 64
"""Label values longer than this are cut (a configured name longer than it is shown cut, too)."""
OTHER = "other"
"""The label value of every model or provider name that is not configured."""
AUTH_FAILURE_REASONS = ("missing_key", "invalid_key", "expired_key", "throttled")
ADMIN_AUTH_FAILURE_REASONS = ("invalid_master_key", "throttled")

_COL = {name: i for i, name in enumerate(FIELD_NAMES)}
# what decides an event's series; the memo is keyed on the raw values
_SERIES_KEY = operator.itemgetter(
    _COL["endpoint"], _COL["provider"], _COL["requested_model"], _COL["error_type"], _COL["http_status"]
)
_LATENCY_MS = _COL["latency_ms"]
_IS_STREAM = _COL["is_stream"]
_TTFT_MS = _COL["ttft_ms"]
_PROMPT_TOKENS = _COL["prompt_tokens"]
_COMPLETION_TOKENS = _COL["completion_tokens"]
_COST_USD = _COL["cost_usd"]
_PRICE_STATUS = _COL["price_status"]
_CACHE_STATUS = _COL["cache_status"]


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


class _Count:
    """One counter series. Starts at 0.0 like prometheus_client's, so the sum is the same float."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()


class _Hist:
    """One histogram series: observations per bucket (not cumulative; the last bucket is +Inf), and their sum."""

    __slots__ = ("counts", "created", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.total = 0.0
        self.created = time.time()


class _Family:
    """A metric's series by label values, in creation order (the order prometheus_client renders them in)."""

    def __init__(self, kind: str, name: str, doc: str, labelnames: tuple[str, ...], buckets: tuple = ()) -> None:
        self.kind = kind
        self.name = name
        self.doc = doc
        self.labelnames = labelnames
        # bisect_left over the upper bounds gives prometheus_client's bucket: the first with value <= bound
        self.bounds = (*(float(b) for b in buckets), float("inf"))
        self.les = [floatToGoString(b) for b in self.bounds]
        self.series: dict[tuple[str, ...], Any] = {}

    def child(self, *labels: Any) -> Any:
        labels = tuple(str(v) for v in labels)  # as prometheus_client's labels() does
        found = self.series.get(labels)
        if found is None:
            found = self.series[labels] = _Hist(len(self.bounds)) if self.kind == "histogram" else _Count()
        return found

    def snapshot(self) -> list[tuple[tuple[str, ...], Any, float, float]]:
        if self.kind == "histogram":
            return [(labels, list(s.counts), s.total, s.created) for labels, s in self.series.items()]
        return [(labels, s.value, 0.0, s.created) for labels, s in self.series.items()]

    def render(self, snapshot: list[tuple[tuple[str, ...], Any, float, float]]) -> Metric:
        # PROMETHEUS_DISABLE_CREATED_SERIES (or disable_created_metrics()) applies as to the library's own metrics
        created = getattr(_prometheus_metrics, "_use_created", True)
        family: Metric
        if self.kind == "histogram":
            family = HistogramMetricFamily(self.name, self.doc, labels=self.labelnames)
            for labels, counts, total, at in snapshot:
                cumulative, acc = [], 0.0
                for le, n in zip(self.les, counts, strict=True):
                    acc += n
                    cumulative.append((le, acc))
                family.add_metric(labels, cumulative, total)
                if created:
                    family.samples.append(
                        Sample(self.name + "_created", dict(zip(self.labelnames, labels, strict=True)), at)
                    )
        else:
            family = CounterMetricFamily(self.name, self.doc, labels=self.labelnames)
            for labels, value, _, at in snapshot:
                family.add_metric(labels, value, created=at if created else None)
        return family


@dataclass(slots=True)
class _Series:
    """The series one kind of event feeds, looked up once per (endpoint, provider, model, error, status)."""

    requests: _Count
    duration: _Hist
    ttft: _Hist
    tokens_in: _Hist
    tokens_out: _Hist
    cost: _Count
    ttft_ok: bool
    """Time to first token is observed for streams that did not fail."""
    upstream: _Count | None
    model: str
    unpriced: _Count | None = None
    """Created with the first unpriced call, as prometheus_client's child was (no zero series before that)."""


class _CallMetrics(Collector):
    """The series fed by events: kept by the event writer's thread, rendered on a scrape."""

    def __init__(self, models: frozenset[str] | None, providers: frozenset[str] | None) -> None:
        self._models = models
        self._providers = providers
        ops = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")
        self.duration = _Family(
            "histogram",
            "gen_ai_server_request_duration_seconds",
            "Time from request received to last byte sent.",
            (*ops, "error_type"),
            _LATENCY_BUCKETS,
        )
        self.ttft = _Family(
            "histogram",
            "gen_ai_server_time_to_first_token_seconds",
            "Time from request received to the first content byte.",
            ops,
            _LATENCY_BUCKETS,
        )
        self.tokens = _Family(
            "histogram", "gen_ai_client_token_usage", "Tokens per call.", (*ops, "gen_ai_token_type"), _TOKEN_BUCKETS
        )
        self.requests = _Family(
            "counter", "apex_requests", "Calls handled, by HTTP status.", ("gen_ai_request_model", "http_status")
        )
        self.cost = _Family(
            "counter",
            "apex_cost_usd",
            "List-price cost of served calls (priced ones).",
            ("gen_ai_provider_name", "gen_ai_request_model"),
        )
        self.unpriced = _Family(
            "counter",
            "apex_unpriced_calls",
            "Calls whose model has no price (cost unknown, not $0).",
            ("gen_ai_request_model",),
        )
        self.cache_hits = _Family("counter", "apex_cache_hits", "Calls answered from a cache.", ("cache",))
        self.upstream_errors = _Family(
            "counter",
            "apex_upstream_errors",
            "Failed upstream calls by error type.",
            ("gen_ai_provider_name", "error_type"),
        )
        # the order prometheus_client rendered them in (the order they were registered)
        self._families = (
            self.duration,
            self.ttft,
            self.tokens,
            self.requests,
            self.cost,
            self.unpriced,
            self.cache_hits,
            self.upstream_errors,
        )
        self._memo: dict[tuple[Any, ...], _Series] = {}
        """Raw series key → series, for keys whose values are all allowed as they are (so it stays bounded)."""
        self._bounded_memo: dict[tuple[Any, ...], _Series] = {}
        """Bounded series key → series, for the events whose raw values were not allowed as they are."""
        # Taken once per batch of events, and by a scrape while it copies the numbers: a scrape sees whole events
        # (a histogram's buckets, count and sum agree), and a batch fed from another thread is safe too.
        self._lock = threading.Lock()

    def _bounded(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        """The key with its label values bounded: unconfigured model and provider names → ``other``, every value
        cut to ``MAX_LABEL_CHARS``."""
        endpoint, provider, model, error, status = key
        if model and self._models is not None and model not in self._models:
            model = OTHER
        if provider and self._providers is not None and provider not in self._providers:
            provider = OTHER
        return (
            _cut(endpoint),
            _cut(provider),
            _cut(model),
            _cut(error),
            status if isinstance(status, int) else _cut(status),
        )

    def _series_for(self, key: tuple[Any, ...]) -> _Series:
        bounded = self._bounded(key)
        if bounded == key:
            s = self._series(bounded)
            if len(self._memo) < _MAX_MEMO:
                self._memo[key] = s
            return s
        found = self._bounded_memo.get(bounded)  # the raw key is not kept: a client chose it
        if found is None:
            found = self._series(bounded)
            if len(self._bounded_memo) < _MAX_MEMO:
                self._bounded_memo[bounded] = found
        return found

    def _series(self, key: tuple[Any, ...]) -> _Series:
        endpoint, provider, model, error, status = key
        op = (
            "chat"
            if endpoint.endswith(("chat/completions", "messages"))
            else ("embeddings" if endpoint.endswith("embeddings") else endpoint)
        )
        provider = provider or ""
        model = model or ""
        error = error or ""
        # created in the order the prometheus_client version created these children (it renders in that order)
        return _Series(
            requests=self.requests.child(model, status),
            duration=self.duration.child(op, provider, model, error),
            ttft=self.ttft.child(op, provider, model),
            tokens_in=self.tokens.child(op, provider, model, "input"),
            tokens_out=self.tokens.child(op, provider, model, "output"),
            cost=self.cost.child(provider, model),
            ttft_ok=not error,
            upstream=self.upstream_errors.child(provider, error) if error.startswith("upstream") else None,
            model=model,
        )

    def observe(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Count a batch of events (rows in ``FIELD_NAMES`` order)."""
        memo = self._memo
        latency_bounds = self.duration.bounds
        token_bounds = self.tokens.bounds
        with self._lock:
            for row in rows:
                key = _SERIES_KEY(row)
                s = memo.get(key)
                if s is None:
                    s = self._series_for(key)
                s.requests.value += 1
                seconds = row[_LATENCY_MS] / 1000
                h = s.duration
                h.counts[bisect_left(latency_bounds, seconds)] += 1
                h.total += seconds
                if s.ttft_ok and row[_IS_STREAM] and row[_TTFT_MS] is not None:
                    seconds = row[_TTFT_MS] / 1000
                    h = s.ttft
                    h.counts[bisect_left(latency_bounds, seconds)] += 1
                    h.total += seconds
                tokens = row[_PROMPT_TOKENS]
                if tokens is not None:
                    h = s.tokens_in
                    h.counts[bisect_left(token_bounds, tokens)] += 1
                    h.total += tokens
                    tokens = row[_COMPLETION_TOKENS] or 0
                    h = s.tokens_out
                    h.counts[bisect_left(token_bounds, tokens)] += 1
                    h.total += tokens
                cost = row[_COST_USD]
                if cost is not None:
                    if cost >= 0:  # a counter never goes down (prometheus_client raised, and the event was lost)
                        s.cost.value += cost
                elif row[_PRICE_STATUS] == "unknown":
                    if s.unpriced is None:
                        s.unpriced = self.unpriced.child(s.model)
                    s.unpriced.value += 1
                cache = row[_CACHE_STATUS]
                if cache and str(cache).startswith("hit"):
                    self.cache_hits.child(_cut(cache)).value += 1
                if s.upstream is not None:
                    s.upstream.value += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshots = [family.snapshot() for family in self._families]
        for family, snapshot in zip(self._families, snapshots, strict=True):
            yield family.render(snapshot)


def _cut(value: Any) -> Any:
    return value[:MAX_LABEL_CHARS] if isinstance(value, str) and len(value) > MAX_LABEL_CHARS else value


class GatewayMetrics:
    """The gateway's registry. ``models`` and ``providers``: the configured names, the only ones used as label
    values (None: any name, cut to ``MAX_LABEL_CHARS`` — for tools that render recorded events)."""

    def __init__(self, *, models: Iterable[str] | None = None, providers: Iterable[str] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._calls = _CallMetrics(
            None if models is None else frozenset(models), None if providers is None else frozenset(providers)
        )
        self.registry.register(self._calls)
        self.auth_failures = Counter(
            "apex_auth_failures",
            "Requests rejected for a missing, unknown or expired key, or throttled after too many of those.",
            ("reason",),
            registry=self.registry,
        )
        self.admin_auth_failures = Counter(
            "apex_admin_auth_failures",
            "Admin API (and /metrics) requests rejected for a wrong master key, or throttled after too many.",
            ("reason",),
            registry=self.registry,
        )
        # children made once: the reasons are fixed, and each shows (at 0) from the start
        self.auth_failed = {reason: self.auth_failures.labels(reason) for reason in AUTH_FAILURE_REASONS}
        self.admin_auth_failed = {
            reason: self.admin_auth_failures.labels(reason) for reason in ADMIN_AUTH_FAILURE_REASONS
        }
        self.circuit_state = Gauge(
            "apex_circuit_state",
            "Deployment circuit: 0 closed, 1 half-open, 2 open.",
            ("deployment",),
            registry=self.registry,
        )

    def auth_failure_count(self) -> int:
        """Requests rejected at API-key authentication, all reasons."""
        return int(sum(child._value.get() for child in self.auth_failed.values()))

    def watch_writer(self, snapshot: Callable[[], Mapping[str, int]]) -> None:
        self.registry.register(_WriterCollector(snapshot))

    def observe_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Count events given as rows (values in ``FIELD_NAMES`` order); the event writer feeds a drain at a time."""
        self._calls.observe(rows)

    def observe(self, ev: Mapping[str, Any]) -> None:
        """Count one event given as a mapping."""
        self._calls.observe([tuple(ev.get(name) for name in FIELD_NAMES)])

    def render(self) -> bytes:
        """The exposition text. Blocking CPU work proportional to the series: call it off the event loop."""
        return generate_latest(self.registry)
