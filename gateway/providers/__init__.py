"""Provider adapters, built from settings. Built-in kinds register the way a third-party one would."""

from __future__ import annotations

import os
from collections.abc import Callable

from gateway.config import ProviderSettings
from gateway.providers.base import ChatResult, Provider, StreamChunk, Usage
from gateway.providers.openai_compat import OpenAICompatibleProvider
from gateway.providers.simulated import SimulatedProvider
from gateway.upstream import Transport

__all__ = ["ChatResult", "Provider", "StreamChunk", "Usage", "build_provider", "register_kind"]

Factory = Callable[[ProviderSettings, Transport], Provider]
_KINDS: dict[str, Factory] = {}


def register_kind(kind: str, factory: Factory) -> None:
    _KINDS[kind] = factory


def _openai_like(p: ProviderSettings, transport: Transport) -> Provider:
    # Provider secrets are read from the variable the config names, at start, and never logged.
    key = os.environ.get(p.api_key_env) if p.api_key_env else None
    assert p.base_url is not None
    return OpenAICompatibleProvider(
        p.name,
        p.kind,
        p.base_url,
        key,
        transport,
        timeout_s=p.timeout_s,
        connect_timeout_s=p.connect_timeout_s,
    )


register_kind("simulated", lambda p, _t: SimulatedProvider(p.name, p.latency_scale))
register_kind("openai", _openai_like)
register_kind("openai_compatible", _openai_like)


def build_provider(settings: ProviderSettings, transport: Transport) -> Provider:
    return _KINDS[settings.kind](settings, transport)
