"""Typed, frozen settings for every Apex process, read in one place.

Sources, later ones win: built-in defaults → ``apex.yaml`` (path from ``--config`` or ``APEX_CONFIG``) →
``APEX_*`` environment variables, where ``__`` separates nesting levels (``APEX_GATEWAY__PORT=9000``,
``APEX_DATA__DIR=/srv/apex``). A bad file fails at start with a message naming the file and the field.
Nothing else in the code base reads ``os.environ`` for Apex settings.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "ConfigError",
    "DataSettings",
    "EventSettings",
    "GatewaySettings",
    "LimitSettings",
    "BreakerSettings",
    "Deployment",
    "HealthCheckSettings",
    "ModelRoute",
    "RouteOverrides",
    "RoutingSettings",
    "ProviderSettings",
    "Settings",
    "load_settings",
]

ProviderKind = Literal["simulated", "openai", "openai_compatible", "azure", "anthropic", "gemini", "vertex"]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and field and what to do."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProviderSettings(_Frozen):
    name: str = Field(min_length=1)
    kind: ProviderKind
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

    @model_validator(mode="after")
    def _needs_fields(self) -> ProviderSettings:
        # anthropic, gemini and vertex have a public default base_url; the OpenAI-shaped kinds do not
        required = {
            "openai": ("base_url",),
            "openai_compatible": ("base_url",),
            "azure": ("base_url", "api_version"),
            "vertex": ("project", "location"),
        }.get(self.kind, ())
        for field_name in required:
            if not getattr(self, field_name):
                raise ValueError(f"provider {self.name!r} of kind {self.kind!r} needs {field_name}")
        return self


RoutingStrategy = Literal["weighted", "latency"]


class BreakerSettings(_Frozen):
    """Per-deployment circuit breaker: open after ``failures`` within ``window_s``; probe after ``cooldown_s``."""

    failures: int = Field(default=5, ge=1)
    window_s: float = Field(default=30.0, gt=0)
    cooldown_s: float = Field(default=15.0, gt=0)


class HealthCheckSettings(_Frozen):
    interval_s: float = Field(default=0.0, ge=0)
    """How often open and half-open deployments are probed with a one-token chat call; 0 = off."""
    timeout_s: float = Field(default=5.0, gt=0)


class RouteOverrides(_Frozen):
    """Per-model overrides of the ``routing:`` defaults (unset fields inherit them)."""

    strategy: RoutingStrategy | None = None
    retries: int | None = Field(default=None, ge=0)
    backoff_base_s: float | None = Field(default=None, ge=0)
    backoff_max_s: float | None = Field(default=None, ge=0)
    retry_after_max_s: float | None = Field(default=None, ge=0)
    first_byte_timeout_s: float | None = Field(default=None, gt=0)
    total_timeout_s: float | None = Field(default=None, gt=0)
    deadline_s: float | None = Field(default=None, gt=0)


class RoutingSettings(_Frozen):
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


class Deployment(_Frozen):
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


class RouteOptimizers(_Frozen):
    """Optimizers applied to every call of one model (a key's or a request's own setting wins)."""

    semantic_cache: Literal["off", "on", "shadow"] | None = None
    compression: bool | None = None


class ModelRoute(_Frozen):
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


class DataSettings(_Frozen):
    dir: Path = Path("data")
    events_dir: Path | None = None
    gateway_db: Path | None = None
    warehouse: Path | None = None

    @property
    def events_path(self) -> Path:
        return self.events_dir or self.dir / "events"

    @property
    def gateway_db_path(self) -> Path:
        return self.gateway_db or self.dir / "gateway.db"

    @property
    def warehouse_path(self) -> Path:
        return self.warehouse or self.dir / "warehouse.duckdb"

    @property
    def policies_path(self) -> Path:
        return self.dir / "policies"


class EventSettings(_Frozen):
    queue_size: int = Field(default=100_000, ge=1)
    """Events held in memory before new ones spill to disk."""
    flush_rows: int = Field(default=20_000, ge=1)
    """A Parquet file is rolled when it reaches this many rows..."""
    flush_seconds: float = Field(default=5.0, gt=0)
    """...or when its oldest event is this old."""


class GatewaySettings(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    master_key_env: str = "APEX_MASTER_KEY"
    store_prompts: bool = False
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    upstream_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    """Chosen by measurement (bench/gateway_bench.py): aiohttp's pool is several times faster than httpx's."""
    log_format: Literal["json", "text"] = "json"
    """Process logs as JSON lines (secrets scrubbed) or plain text."""
    key_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a verified key stays cached in memory (revocations take effect within this)."""


class ExactCacheSettings(_Frozen):
    ttl_s: float = Field(default=3600.0, gt=0)
    max_entries: int = Field(default=10_000, ge=1)
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)


class SemanticCacheSettings(_Frozen):
    """The semantic cache (``optimizers.semantic_cache``): opt-in per key (``--semantic-cache on|shadow``), per
    model (``models[].optimize.semantic_cache``) or per request (header ``x-apex-semantic-cache: on|shadow|off``)."""

    dir: Path | None = None
    """LanceDB directory; defaults to ``<data.dir>/semantic_cache``."""
    similarity_threshold: float | None = Field(default=None, gt=0, le=1)
    """Cosine floor for a candidate; unset = the library default chosen by ``bench/cache_quality.py``."""
    verify_threshold: float | None = Field(default=None, ge=0, le=1)
    """Verifier score a candidate needs to be served; unset = the library default."""
    ttl_s: float = Field(default=86_400.0, gt=0)
    max_entries: int = Field(default=100_000, ge=1)
    multi_turn: bool = False
    """Also cache multi-turn conversations, keyed by the last user turn plus a hash of the earlier turns."""
    include_sampled: bool = False
    """Also serve requests that set ``temperature > 0`` (they asked for varied answers, so it is opt-in)."""
    embedding_model: str | None = None
    """Embed lookups with this model, one of ``models`` (a provider's embeddings through Apex's own adapters,
    routed, limited and logged like any ``/v1/embeddings`` call, at the requesting key's expense) instead of the
    bundled all-MiniLM-L6-v2. Its entries live in their own directory under ``dir``. The default thresholds were
    chosen for the bundled model (``bench/cache_quality.py``): re-check them for another one."""


class CacheSettings(_Frozen):
    """Caches are opt-in per key (``apex keys create --cache``) or per request (header ``x-apex-cache: on``)."""

    exact: ExactCacheSettings = ExactCacheSettings()
    semantic: SemanticCacheSettings = SemanticCacheSettings()


class CompressionSettings(_Frozen):
    """Prompt compression (``optimizers.compression``): opt-in per key (``--compress``), per model
    (``models[].optimize.compression``) or per request (header ``x-apex-compress: on|off``)."""

    min_quality: float = Field(default=1.0, ge=0, le=1)
    """Share of named entities that must survive, else the original prompt is sent. Numbers, code blocks, URLs,
    the final question and tool calls must always survive, whatever this says."""


class AutoRoutingSettings(_Frozen):
    """Learned routing between a strong and a cheap model (``optimizers.routing``).

    Requests opt in by asking for ``alias`` as the model, or with a key created with ``--auto-route`` (its
    requests for ``strong_model`` may be served by ``weak_model``). Hints: header ``x-apex-urgency:
    high|normal|low`` or ``x-apex-quality-target: 0.95`` (or the same under ``metadata``)."""

    alias: str = Field(default="apex/auto", min_length=1)
    strong_model: str | None = None
    """A configured model name: the baseline the savings are measured against."""
    weak_model: str | None = None
    """A configured model name: the cheaper model the policy may choose."""
    policy_file: Path | None = None
    """Defaults to ``<data.dir>/policies/routing_policy.json`` (written by the ``routing_policy`` asset)."""
    reload_seconds: float = Field(default=2.0, gt=0)
    """How often the policy file is checked for a new version (hot reload, no restart)."""

    @property
    def enabled(self) -> bool:
        return self.strong_model is not None and self.weak_model is not None


class OptimizerSettings(_Frozen):
    compression: CompressionSettings = CompressionSettings()
    auto_routing: AutoRoutingSettings = AutoRoutingSettings()


class LimitSettings(_Frozen):
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


class SandboxSettings(_Frozen):
    instance_type: str = "c7i.large"
    """Instance type validation runs on this machine are metered as (BVM); must be in the price seed."""


class PortSettings(_Frozen):
    dagster: int = Field(default=3000, ge=1, le=65535)
    dashboard: int = Field(default=8501, ge=1, le=65535)


def _check_fallback_cycles(models: tuple[ModelRoute, ...]) -> None:
    fallbacks = {m.name: m.fallbacks for m in models}
    index = {m.name: i for i, m in enumerate(models)}

    def visit(name: str, path: list[str]) -> None:
        for nxt in fallbacks.get(name, ()):
            if nxt in path:
                cycle = " -> ".join([*path[path.index(nxt) :], nxt])
                raise ValueError(f"models.{index[path[0]]}.fallbacks: cycle {cycle}")
            visit(nxt, [*path, nxt])

    for m in models:
        visit(m.name, [m.name])


class Settings(_Frozen):
    gateway: GatewaySettings = GatewaySettings()
    data: DataSettings = DataSettings()
    events: EventSettings = EventSettings()
    ports: PortSettings = PortSettings()
    limits: LimitSettings = LimitSettings()
    cache: CacheSettings = CacheSettings()
    optimizers: OptimizerSettings = OptimizerSettings()
    sandbox: SandboxSettings = SandboxSettings()
    providers: tuple[ProviderSettings, ...] = ()
    models: tuple[ModelRoute, ...] = ()
    routing: RoutingSettings = RoutingSettings()
    source: str = "<defaults>"
    """Where the settings came from, for error messages."""

    @model_validator(mode="after")
    def _routes_point_at_providers(self) -> Settings:
        names = [p.name for p in self.providers]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"providers: duplicate name(s) {sorted(dupes)}")
        model_names = [m.name for m in self.models]
        dupes = {n for n in model_names if model_names.count(n) > 1}
        if dupes:
            raise ValueError(f"models: duplicate name(s) {sorted(dupes)}")
        for i, route in enumerate(self.models):
            if route.provider is not None and route.provider not in names:
                raise ValueError(f"models.{i}.provider: {route.provider!r} is not a configured provider (have {names})")
            for j, dep in enumerate(route.deployments):
                if dep.provider not in names:
                    raise ValueError(
                        f"models.{i}.deployments.{j}.provider: {dep.provider!r} is not a configured provider "
                        f"(have {names})"
                    )
            for name in route.fallbacks:
                if name not in model_names:
                    raise ValueError(f"models.{i}.fallbacks: {name!r} is not a configured model")
        _check_fallback_cycles(self.models)
        auto = self.optimizers.auto_routing
        for field_name in ("strong_model", "weak_model"):
            name = getattr(auto, field_name)
            if name is not None and name not in model_names:
                raise ValueError(f"optimizers.auto_routing.{field_name}: {name!r} is not a configured model")
        if (auto.strong_model is None) != (auto.weak_model is None):
            raise ValueError("optimizers.auto_routing: set both strong_model and weak_model, or neither")
        if auto.alias in model_names:
            raise ValueError(f"optimizers.auto_routing.alias: {auto.alias!r} is also a configured model name")
        embedder = self.cache.semantic.embedding_model
        if embedder is not None and embedder not in model_names:
            raise ValueError(f"cache.semantic.embedding_model: {embedder!r} is not a configured model")
        return self

    @property
    def semantic_cache_dir(self) -> Path:
        return self.cache.semantic.dir or self.data.dir / "semantic_cache"

    @property
    def routing_policy_path(self) -> Path:
        return self.optimizers.auto_routing.policy_file or self.data.policies_path / "routing_policy.json"

    def provider(self, name: str) -> ProviderSettings:
        return next(p for p in self.providers if p.name == name)

    def route(self, model: str) -> ModelRoute | None:
        return self._routes.get(model)

    @functools.cached_property
    def _routes(self) -> dict[str, ModelRoute]:
        return {m.name: m for m in self.models}


DEFAULT_CONFIG_TEXT = """\
# Apex configuration. Every value can be overridden by APEX_<SECTION>__<FIELD> environment variables.
gateway:
  host: 127.0.0.1
  port: 8080
  store_prompts: false        # prompts are hashed, never stored, unless this is true
data:
  dir: data                   # events/, gateway.db and warehouse.duckdb live here
providers:
  # Offline, key-less providers answering in the real OpenAI wire format (for the demo and tests).
  - name: simulated
    kind: simulated
  # A real provider: uncomment and export OPENAI_API_KEY.
  # - name: openai
  #   kind: openai
  #   base_url: https://api.openai.com/v1
  #   api_key_env: OPENAI_API_KEY
models:
  - {name: gpt-4o, provider: simulated}
  - {name: gpt-4o-mini, provider: simulated}
  - {name: gpt-4.1-mini, provider: simulated}
  - {name: claude-sonnet-4-5, provider: simulated}
  - {name: gemini-2.5-flash, provider: simulated}
  # A fine-tuned alias with no public price: its cost is recorded as unknown (never $0).
  - {name: acme-ft-support-v2, provider: simulated}
optimizers:
  # Ask for model "apex/auto" (or create a key with --auto-route) and the learned routing policy picks the strong
  # or the cheap model per prompt; savings are measured against the strong one. The policy file is written by the
  # routing_policy Dagster asset and hot-reloaded.
  auto_routing:
    strong_model: gpt-4o
    weak_model: gpt-4o-mini
"""


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("APEX_") or "__" not in name:
            continue
        path = name[len("APEX_") :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(merged.get(k), Mapping):
            merged[k] = _merge(dict(merged[k]), v)
        else:
            merged[k] = v
    return merged


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  - {loc}: {e['msg']}")
    lines.append("Fix the field(s) above (see README 'Configuration') and start again.")
    return "\n".join(lines)


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load settings from ``path`` (or ``$APEX_CONFIG``, or ``./apex.yaml`` if present) plus the environment."""
    env = os.environ if environ is None else environ
    chosen = path or env.get("APEX_CONFIG")
    if chosen is None and Path("apex.yaml").exists():
        chosen = "apex.yaml"
    if chosen is None:
        raw: Any = yaml.safe_load(DEFAULT_CONFIG_TEXT)
        source = "<built-in defaults>"
    else:
        file = Path(chosen)
        source = str(file)
        if not file.is_file():
            raise ConfigError(f"{file}: config file not found. Create it (`apex init`) or pass --config PATH.")
        try:
            raw = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{file}: the top level must be a mapping of sections (gateway:, providers:, ...)")
    raw = _merge(raw, _env_overrides(env))
    raw["source"] = source
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
