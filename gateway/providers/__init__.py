"""The provider registry: adapters built from settings, with ``register_kind(kind, factory, requires=...)``.

The built-in kinds register the way a third-party one would: each adapter module calls ``register_kind`` and is
named in ``BUILTIN_MODULES``, which are imported the first time the registry is asked (as plugins are loaded), so
this package — the adapter interface (``base``), SSE parsing (``sse``) and the registry — sits below the wire
formats (``gateway.wire.*``) that implement it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable

from contracts.settings import ProviderSettings
from gateway.providers.base import ChatResult, EmbeddingResult, Provider, StreamChunk, Usage
from gateway.upstream import Transport

__all__ = [
    "BUILTIN_MODULES",
    "ChatResult",
    "EmbeddingResult",
    "Provider",
    "StreamChunk",
    "Usage",
    "build_provider",
    "check_provider_settings",
    "provider_kinds",
    "provider_secret",
    "register_kind",
]

BUILTIN_MODULES = (
    "gateway.providers.simulated",
    "gateway.wire.openai.provider",
    "gateway.wire.azure.provider",
    "gateway.wire.anthropic.provider",
    "gateway.wire.gemini.provider",
)

Factory = Callable[[ProviderSettings, Transport], Provider]
_KINDS: dict[str, tuple[Factory, tuple[str, ...]]] = {}
_loaded = False


def register_kind(kind: str, factory: Factory, *, requires: tuple[str, ...] = ()) -> None:
    """Make ``kind`` usable in ``providers[].kind``; ``requires`` names the settings fields it cannot do without."""
    _KINDS[kind] = (factory, requires)


def _kinds() -> dict[str, tuple[Factory, tuple[str, ...]]]:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
    return _KINDS


def provider_kinds() -> tuple[str, ...]:
    return tuple(sorted(_kinds()))


def check_provider_settings(providers: Iterable[ProviderSettings]) -> list[str]:
    """Problems with ``providers`` (unknown kind, a required field missing), each naming the field."""
    kinds = _kinds()
    problems: list[str] = []
    for i, p in enumerate(providers):
        if p.kind not in kinds:
            problems.append(f"providers.{i}.kind: unknown kind {p.kind!r} (registered: {', '.join(provider_kinds())})")
            continue
        for field_name in kinds[p.kind][1]:
            if not getattr(p, field_name):
                problems.append(f"providers.{i}: provider {p.name!r} of kind {p.kind!r} needs {field_name}")
    return problems


def provider_secret(p: ProviderSettings) -> str | None:
    """The provider's API key, read from the variable the config names, at start; never logged."""
    return os.environ.get(p.api_key_env) if p.api_key_env else None


def build_provider(settings: ProviderSettings, transport: Transport) -> Provider:
    return _kinds()[settings.kind][0](settings, transport)
