"""Apex's settings, one ``apex.yaml`` split by owner: each process loads the sections it owns.

| section(s)                                   | owner                    | module                          |
|----------------------------------------------|--------------------------|---------------------------------|
| gateway, providers, models, routing, limits, | the gateway              | ``contracts.settings.gateway``  |
| events, cache.exact                          |                          |                                 |
| cache.semantic, optimizers                   | optimizers (in gateway)  | ``contracts.settings.optimizers`` |
| data, ports, sandbox                         | every process            | ``contracts.settings.shared``   |

``Settings`` (every section, cross-checked) is what the gateway and the demo load. ``AnalyticsSettings`` (Dagster,
billing) and ``DashboardSettings`` validate only their own sections and ignore the rest of the file.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from pydantic import ConfigDict, model_validator

from contracts.settings._base import ConfigError, Frozen
from contracts.settings.gateway import (
    BreakerSettings,
    Deployment,
    EventSettings,
    ExactCacheSettings,
    GatewaySettings,
    HealthCheckSettings,
    LimitSettings,
    ModelRoute,
    ProviderSettings,
    RouteOptimizers,
    RouteOverrides,
    RoutingSettings,
)
from contracts.settings.loader import describe_error, load_section
from contracts.settings.optimizers import (
    AutoRoutingSettings,
    CacheSettings,
    CompressionSettings,
    OptimizerSettings,
    SemanticCacheSettings,
)
from contracts.settings.shared import DataSettings, PortSettings, SandboxSettings

__all__ = [
    "DEFAULT_CONFIG_TEXT",
    "AnalyticsSettings",
    "AutoRoutingSettings",
    "BreakerSettings",
    "CacheSettings",
    "CompressionSettings",
    "ConfigError",
    "DashboardSettings",
    "DataSettings",
    "Deployment",
    "EventSettings",
    "ExactCacheSettings",
    "GatewaySettings",
    "HealthCheckSettings",
    "LimitSettings",
    "ModelRoute",
    "OptimizerSettings",
    "PortSettings",
    "ProviderSettings",
    "RouteOptimizers",
    "RouteOverrides",
    "RoutingSettings",
    "SandboxSettings",
    "SemanticCacheSettings",
    "Settings",
    "SharedSettings",
    "describe_error",
    "load_analytics_settings",
    "load_dashboard_settings",
    "load_settings",
]


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


def _check_routes(
    providers: tuple[ProviderSettings, ...], models: tuple[ModelRoute, ...], auto: AutoRoutingSettings
) -> None:
    names = [p.name for p in providers]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"providers: duplicate name(s) {sorted(dupes)}")
    model_names = [m.name for m in models]
    dupes = {n for n in model_names if model_names.count(n) > 1}
    if dupes:
        raise ValueError(f"models: duplicate name(s) {sorted(dupes)}")
    for i, route in enumerate(models):
        if route.provider is not None and route.provider not in names:
            raise ValueError(f"models.{i}.provider: {route.provider!r} is not a configured provider (have {names})")
        for j, dep in enumerate(route.deployments):
            if dep.provider not in names:
                raise ValueError(
                    f"models.{i}.deployments.{j}.provider: {dep.provider!r} is not a configured provider (have {names})"
                )
        for name in route.fallbacks:
            if name not in model_names:
                raise ValueError(f"models.{i}.fallbacks: {name!r} is not a configured model")
    _check_fallback_cycles(models)
    for field_name in ("strong_model", "weak_model"):
        name = getattr(auto, field_name)
        if name is not None and name not in model_names:
            raise ValueError(f"optimizers.auto_routing.{field_name}: {name!r} is not a configured model")
    if (auto.strong_model is None) != (auto.weak_model is None):
        raise ValueError("optimizers.auto_routing: set both strong_model and weak_model, or neither")
    if auto.alias in model_names:
        raise ValueError(f"optimizers.auto_routing.alias: {auto.alias!r} is also a configured model name")


class SharedSettings(Frozen):
    """What the analytics side shares with the gateway: data paths, the model routes (savings baselines) and the
    optimizer sections whose files it writes (the routing policy)."""

    data: DataSettings = DataSettings()
    ports: PortSettings = PortSettings()
    sandbox: SandboxSettings = SandboxSettings()
    optimizers: OptimizerSettings = OptimizerSettings()
    providers: tuple[ProviderSettings, ...] = ()
    models: tuple[ModelRoute, ...] = ()
    source: str = "<defaults>"
    """Where the settings came from, for error messages."""

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


class AnalyticsSettings(SharedSettings):
    """Dagster, dbt and billing: every section they read; the gateway's own sections are not validated."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @model_validator(mode="after")
    def _routes_point_at_providers(self) -> AnalyticsSettings:
        _check_routes(self.providers, self.models, self.optimizers.auto_routing)
        return self


class DashboardSettings(Frozen):
    """The dashboard: where the warehouse is and its port."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    data: DataSettings = DataSettings()
    ports: PortSettings = PortSettings()
    source: str = "<defaults>"


class Settings(SharedSettings):
    """Every section, cross-checked: what the gateway process (and the demo, which runs everything) loads."""

    gateway: GatewaySettings = GatewaySettings()
    events: EventSettings = EventSettings()
    limits: LimitSettings = LimitSettings()
    cache: CacheSettings = CacheSettings()
    routing: RoutingSettings = RoutingSettings()

    @model_validator(mode="after")
    def _routes_point_at_providers(self) -> Settings:
        _check_routes(self.providers, self.models, self.optimizers.auto_routing)
        embedder = self.cache.semantic.embedding_model
        if embedder is not None and embedder not in {m.name for m in self.models}:
            raise ValueError(f"cache.semantic.embedding_model: {embedder!r} is not a configured model")
        return self

    @property
    def semantic_cache_dir(self) -> Path:
        return self.cache.semantic.dir or self.data.dir / "semantic_cache"


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


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load every section from ``path`` (or ``$APEX_CONFIG``, or ``./apex.yaml`` if present) plus the environment."""
    return load_section(Settings, path, environ, DEFAULT_CONFIG_TEXT)


def load_analytics_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> AnalyticsSettings:
    """The analytics side's sections only (Dagster assets, dbt, billing)."""
    return load_section(AnalyticsSettings, path, environ, DEFAULT_CONFIG_TEXT)


def load_dashboard_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> DashboardSettings:
    """The dashboard's sections only."""
    return load_section(DashboardSettings, path, environ, DEFAULT_CONFIG_TEXT)
