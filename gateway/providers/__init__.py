"""Provider adapters, built from settings. Built-in kinds register the way a third-party one would."""

from __future__ import annotations

import os
from collections.abc import Callable

from gateway.config import ProviderSettings
from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.azure import AzureOpenAIProvider
from gateway.providers.base import ChatResult, EmbeddingResult, Provider, StreamChunk, Usage
from gateway.providers.gemini import GeminiProvider
from gateway.providers.openai_compat import OpenAICompatibleProvider
from gateway.providers.simulated import SimulatedProvider
from gateway.upstream import Transport

__all__ = ["ChatResult", "EmbeddingResult", "Provider", "StreamChunk", "Usage", "build_provider", "register_kind"]

Factory = Callable[[ProviderSettings, Transport], Provider]
_KINDS: dict[str, Factory] = {}


def register_kind(kind: str, factory: Factory) -> None:
    _KINDS[kind] = factory


def _secret(p: ProviderSettings) -> str | None:
    # Provider secrets are read from the variable the config names, at start, and never logged.
    return os.environ.get(p.api_key_env) if p.api_key_env else None


def _openai_like(p: ProviderSettings, transport: Transport) -> Provider:
    key = _secret(p)
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


def _azure(p: ProviderSettings, transport: Transport) -> Provider:
    assert p.base_url is not None and p.api_version is not None
    timeouts = {"timeout_s": p.timeout_s, "connect_timeout_s": p.connect_timeout_s}
    return AzureOpenAIProvider(p.name, p.base_url, _secret(p), p.api_version, transport, **timeouts)


def _anthropic(p: ProviderSettings, transport: Transport) -> Provider:
    timeouts = {"timeout_s": p.timeout_s, "connect_timeout_s": p.connect_timeout_s}
    return AnthropicProvider(p.name, p.base_url, _secret(p), transport, api_version=p.api_version, **timeouts)


def _gemini(p: ProviderSettings, transport: Transport) -> Provider:
    timeouts = {"timeout_s": p.timeout_s, "connect_timeout_s": p.connect_timeout_s}
    return GeminiProvider(
        p.name, p.kind, p.base_url, _secret(p), transport, project=p.project, location=p.location, **timeouts
    )


register_kind("azure", _azure)
register_kind("anthropic", _anthropic)
register_kind("gemini", _gemini)
register_kind("vertex", _gemini)


def build_provider(settings: ProviderSettings, transport: Transport) -> Provider:
    return _KINDS[settings.kind](settings, transport)
