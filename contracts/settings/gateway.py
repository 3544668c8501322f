"""The gateway's sections: providers, model routes, routing, limits, events, the exact cache and the server.

Provider *kinds* are not listed here: the gateway's provider registry knows them and checks ``providers[].kind``
and each kind's required fields when the gateway loads its settings (``gateway.settings``).
"""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import Field, model_validator

from contracts.settings._base import Frozen

__all__ = [
    "BreakerSettings",
    "Deployment",
    "EventSettings",
    "ExactCacheSettings",
    "GatewaySettings",
    "HealthCheckSettings",
    "LimitSettings",
    "ModelRoute",
    "ProviderSettings",
    "RouteOptimizers",
    "RouteOverrides",
    "RoutingSettings",
    "RoutingStrategy",
]


class ProviderSettings(Frozen):
    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    """A kind registered in the gateway's provider registry (``simulated``, ``openai``, ``azure``, ...)."""
    base_url: str | None = None
    api_key_env: str | None = None
    """Name of the environment variable holding the upstream key (the key itself is never in the file)."""
    timeout_s: float = Field(default=600.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    latency_scale: float = Field(default=1.0, ge=0)
    """Simulated providers only: multiply the simulated latency (0 = answer immediately)."""
    api_version: str | None = None
    """Azure: the ``api-version`` query parameter (required). Anthropic: the ``anthropic-version`` header."""
    project: str | None = None
    """Vertex AI: the Google Cloud project id (required)."""
    location: str | None = None
    """Vertex AI: the region, e.g. ``us-central1`` (required; ``global`` for the global endpoint)."""


RoutingStrategy = Literal["weighted", "latency"]


class BreakerSettings(Frozen):
    """Per-deployment circuit breaker: open after ``failures`` within ``window_s``; probe after ``cooldown_s``."""

    failures: int = Field(default=5, ge=1)
    window_s: float = Field(default=30.0, gt=0)
    cooldown_s: float = Field(default=15.0, gt=0)


class HealthCheckSettings(Frozen):
    interval_s: float = Field(default=0.0, ge=0)
    """How often open and half-open deployments are probed with a one-token chat call; 0 = off."""
    timeout_s: float = Field(default=5.0, gt=0)


class RouteOverrides(Frozen):
    """Per-model overrides of the ``routing:`` defaults (unset fields inherit them)."""

    strategy: RoutingStrategy | None = None
    retries: int | None = Field(default=None, ge=0)
    backoff_base_s: float | None = Field(default=None, ge=0)
    backoff_max_s: float | None = Field(default=None, ge=0)
    retry_after_max_s: float | None = Field(default=None, ge=0)
    first_byte_timeout_s: float | None = Field(default=None, gt=0)
    total_timeout_s: float | None = Field(default=None, gt=0)
    deadline_s: float | None = Field(default=None, gt=0)


class RoutingSettings(Frozen):
    """How a model's deployments are chosen, retried and guarded (the ``routing:`` section)."""

    strategy: RoutingStrategy = "weighted"
    retries: int = Field(default=2, ge=0)
    """Extra attempts per model group after the first (other deployments first, then the same one again)."""
    backoff_base_s: float = Field(default=0.1, ge=0)
    backoff_max_s: float = Field(default=2.0, ge=0)
    retry_after_max_s: float = Field(default=1.0, ge=0)
    """A 429 whose Retry-After is longer than this is not waited for: another deployment is tried, or the 429
    (with its Retry-After) goes back to the client."""
    first_byte_timeout_s: float = Field(default=60.0, gt=0)
    """Streams: one attempt's wait for its first chunk."""
    total_timeout_s: float = Field(default=600.0, gt=0)
    """One attempt, start to last byte."""
    deadline_s: float = Field(default=600.0, gt=0)
    """The whole call before an answer starts: every attempt and every wait between them."""
    latency_alpha: float = Field(default=0.3, gt=0, le=1)
    """Weight of the newest sample in a deployment's latency EWMA (``strategy: latency``)."""
    latency_explore: float = Field(default=0.1, ge=0, le=1)
    """Share of calls the latency strategy sends to a weighted-random deployment instead of the fastest."""
    breaker: BreakerSettings = BreakerSettings()
    health_check: HealthCheckSettings = HealthCheckSettings()

    def for_route(self, route: ModelRoute) -> RoutingSettings:
        if route.routing is None:
            return self
        return self.model_copy(update=route.routing.model_dump(exclude_none=True))


class Deployment(Frozen):
    """One place a model can be served: a provider and the model name it knows."""

    provider: str = Field(min_length=1)
    upstream_model: str | None = None
    """Model name sent upstream; defaults to the model's ``name``."""
    price_model: str | None = None
    """Key in the price table when it differs from the upstream model name."""
    weight: float = Field(default=1.0, gt=0)
    region: str | None = None

    @property
    def target(self) -> str:
        assert self.upstream_model is not None, "use ModelRoute.group(), which fills upstream_model in"
        return self.upstream_model


class RouteOptimizers(Frozen):
    """Optimizers applied to every call of one model (a key's or a request's own setting wins)."""

    semantic_cache: Literal["off", "on", "shadow"] | None = None
    compression: bool | None = None


class ModelRoute(Frozen):
    """A model name clients may ask for: a group of deployments, and the models to fall back to.

    ``{name, provider, upstream_model, price_model}`` is shorthand for a group of one deployment."""

    name: str = Field(min_length=1)
    provider: str | None = Field(default=None, min_length=1)
    upstream_model: str | None = None
    """Model name sent upstream; defaults to ``name``."""
    price_model: str | None = None
    """Key in the price table when it differs from the upstream model name. With ``deployments``: the price of
    the model the client asked for (the savings baseline); defaults to the first deployment's."""
    deployments: tuple[Deployment, ...] = ()
    fallbacks: tuple[str, ...] = ()
    """Other models tried, in order, once every deployment of this one has failed."""
    routing: RouteOverrides | None = None
    optimize: RouteOptimizers = RouteOptimizers()

    @model_validator(mode="after")
    def _one_form(self) -> ModelRoute:
        if self.provider is None and not self.deployments:
            raise ValueError(f"model {self.name!r} needs provider (one deployment) or deployments")
        if self.provider is not None and self.deployments:
            raise ValueError(f"model {self.name!r}: give provider or deployments, not both")
        if self.deployments and self.upstream_model is not None:
            raise ValueError(f"model {self.name!r}: with deployments, set upstream_model on each deployment")
        if self.name in self.fallbacks:
            raise ValueError(f"model {self.name!r} lists itself in fallbacks")
        return self

    def group(self) -> tuple[Deployment, ...]:
        """The deployments, with ``upstream_model`` filled in (built once: this runs on every call)."""
        return self._group

    @functools.cached_property
    def _group(self) -> tuple[Deployment, ...]:
        if not self.deployments:
            assert self.provider is not None
            return (Deployment(provider=self.provider, upstream_model=self.target, price_model=self.price_model),)
        return tuple(
            d if d.upstream_model else d.model_copy(update={"upstream_model": self.name}) for d in self.deployments
        )

    @property
    def target(self) -> str:
        """The upstream model name of the (first) deployment."""
        if self.deployments:
            return self.deployments[0].upstream_model or self.name
        return self.upstream_model or self.name

    @functools.cached_property
    def baseline_price_model(self) -> str:
        """Price-table name of this model as the client asked for it, whichever deployment serves it."""
        if self.price_model:
            return self.price_model
        first = self.group()[0]
        return first.price_model or first.target


class EventSettings(Frozen):
    queue_size: int = Field(default=100_000, ge=1)
    """Events held in memory before new ones spill to disk."""
    flush_rows: int = Field(default=20_000, ge=1)
    """A Parquet file is rolled when it reaches this many rows..."""
    flush_seconds: float = Field(default=5.0, gt=0)
    """...or when its oldest event is this old."""
    durability: Literal["batch", "sync"] = "batch"
    """``batch``: the writer thread appends answered calls' events (and the spend they carry) to the write-ahead
    log every ``wal_flush_ms``; a ``kill -9`` loses at most the calls answered in the last interval. ``sync``: an
    event is in the write-ahead log (fsynced if ``wal_fsync``) before its response completes; nothing answered is
    lost, at a throughput cost (bench/wal_bench.py)."""
    wal_flush_ms: float = Field(default=10.0, gt=0, le=1000)
    """How often the writer thread appends accepted events to the write-ahead log (``batch`` mode)."""
    wal_fsync: bool = True
    """fsync the write-ahead log. Off, a process crash still loses nothing more, but a power loss or kernel crash
    may lose what the OS had not written yet."""
    wal_fsync_ms: float = Field(default=100.0, ge=0, le=10_000)
    """``batch`` mode: how often (at most) the log is fsynced; appends in between are written (a killed process
    loses nothing written) and share one fsync. 0 = fsync every append. ``sync`` mode fsyncs every call."""


class GatewaySettings(Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    master_key_env: str = "APEX_MASTER_KEY"
    store_prompts: bool = False
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    body_read_timeout_s: float = Field(default=30.0, gt=0)
    """A client must send its whole request body within this many seconds of the call starting, else it gets 408
    and the connection is closed (a client trickling its body cannot hold a request open)."""
    header_read_timeout_s: float = Field(default=10.0, gt=0)
    """A request's headers must be complete within this many seconds of its first byte (of the connection, for the
    first request), else the connection is closed: a client trickling its headers cannot hold a connection open."""
    upstream_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    """Chosen by measurement (bench/gateway_bench.py): aiohttp's pool is several times faster than httpx's."""
    log_format: Literal["json", "text"] = "json"
    """Process logs as JSON lines (secrets scrubbed) or plain text."""
    key_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a verified key stays cached in memory (revocations take effect within this)."""
    unknown_key_cache_seconds: float = Field(default=30.0, ge=0)
    """How long a key that matched nothing stays remembered as unknown (by its hash; 0 = not remembered): a key
    registered by another process (``apex keys add``) may be refused for this long."""
    unknown_key_cache_size: int = Field(default=100_000, ge=0)
    """At most this many unknown keys are remembered (the oldest are forgotten first)."""
    auth_failures_per_s: float = Field(default=1.0, gt=0)
    """Failed authentications (API keys and the admin master key) allowed per client address per second, after
    ``auth_failure_burst``; beyond them the address gets 429 with Retry-After, its credentials unchecked."""
    auth_failure_burst: int = Field(default=20, ge=1)
    """Failed authentications a client address may make at once before the rate above applies."""
    metrics_auth: Literal["none", "master_key"] = "none"
    """``GET /metrics``: ``none`` answers any scraper (label values are only configured names, so it reveals the
    model and provider names and the traffic); ``master_key`` asks for the admin master key as a bearer token."""
    drain_timeout_s: float = Field(default=25.0, gt=0)
    """On SIGTERM, how long in-flight calls may take to finish; then the process exits (accepted events are in
    the write-ahead log at worst, replayed at the next start)."""


class ExactCacheSettings(Frozen):
    ttl_s: float = Field(default=3600.0, gt=0)
    max_entries: int = Field(default=10_000, ge=1)
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)


class LimitSettings(Frozen):
    """Budgets and rate limits (see ``gateway.limits``)."""

    backend: Literal["sqlite", "redis"] = "sqlite"
    """``sqlite``: counters in this process, persisted to gateway.db. ``redis``: shared by several gateways."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = Field(default="apex", min_length=1)
    default_max_tokens: int = Field(default=4096, ge=1)
    """Completion tokens reserved when a request sets neither max_tokens nor max_completion_tokens."""
    unknown_model_price_per_token: float = Field(default=0.00006, gt=0)
    """USD per token (input and output) charged against budgets for a model missing from the price table."""
    reservation_ttl_s: float = Field(default=3600.0, gt=0)
    """A reservation never settled (a lost stream) is released after this long."""
