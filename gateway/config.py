"""Typed, frozen settings for every Apex process, read in one place.

Sources, later ones win: built-in defaults → ``apex.yaml`` (path from ``--config`` or ``APEX_CONFIG``) →
``APEX_*`` environment variables, where ``__`` separates nesting levels (``APEX_GATEWAY__PORT=9000``,
``APEX_DATA__DIR=/srv/apex``). A bad file fails at start with a message naming the file and the field.
Nothing else in the code base reads ``os.environ`` for Apex settings.
"""

from __future__ import annotations

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
    "ModelRoute",
    "ProviderSettings",
    "Settings",
    "load_settings",
]

ProviderKind = Literal["simulated", "openai", "openai_compatible"]


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

    @model_validator(mode="after")
    def _needs_url(self) -> ProviderSettings:
        if self.kind != "simulated" and not self.base_url:
            raise ValueError(f"provider {self.name!r} of kind {self.kind!r} needs base_url")
        return self


class ModelRoute(_Frozen):
    """A model name clients may ask for, and where it goes."""

    name: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    upstream_model: str | None = None
    """Model name sent upstream; defaults to ``name``."""
    price_model: str | None = None
    """Key in the price table when it differs from the upstream model name."""

    @property
    def target(self) -> str:
        return self.upstream_model or self.name


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
    key_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a verified key stays cached in memory (revocations take effect within this)."""


class PortSettings(_Frozen):
    dagster: int = Field(default=3000, ge=1, le=65535)
    dashboard: int = Field(default=8501, ge=1, le=65535)


class Settings(_Frozen):
    gateway: GatewaySettings = GatewaySettings()
    data: DataSettings = DataSettings()
    events: EventSettings = EventSettings()
    ports: PortSettings = PortSettings()
    providers: tuple[ProviderSettings, ...] = ()
    models: tuple[ModelRoute, ...] = ()
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
            if route.provider not in names:
                raise ValueError(f"models.{i}.provider: {route.provider!r} is not a configured provider (have {names})")
        return self

    def provider(self, name: str) -> ProviderSettings:
        return next(p for p in self.providers if p.name == name)

    def route(self, model: str) -> ModelRoute | None:
        return next((m for m in self.models if m.name == model), None)


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
