"""The optimizers' sections: the semantic cache (with the exact cache under ``cache:``), compression, routing."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from contracts.settings._base import Frozen
from contracts.settings.gateway import ExactCacheSettings

__all__ = [
    "AutoRoutingSettings",
    "CacheSettings",
    "CompressionSettings",
    "OptimizerSettings",
    "SemanticCacheSettings",
]


class SemanticCacheSettings(Frozen):
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


class CacheSettings(Frozen):
    """Caches are opt-in per key (``apex keys create --cache``) or per request (header ``x-apex-cache: on``)."""

    exact: ExactCacheSettings = ExactCacheSettings()
    semantic: SemanticCacheSettings = SemanticCacheSettings()


class CompressionSettings(Frozen):
    """Prompt compression (``optimizers.compression``): opt-in per key (``--compress``), per model
    (``models[].optimize.compression``) or per request (header ``x-apex-compress: on|off``)."""

    min_quality: float = Field(default=1.0, ge=0, le=1)
    """Share of named entities that must survive, else the original prompt is sent. Numbers, code blocks, URLs,
    the final question and tool calls must always survive, whatever this says."""


class AutoRoutingSettings(Frozen):
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


class OptimizerSettings(Frozen):
    compression: CompressionSettings = CompressionSettings()
    auto_routing: AutoRoutingSettings = AutoRoutingSettings()
