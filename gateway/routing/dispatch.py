"""Send a chat call to the deployment configured for its model.

The dispatcher owns everything between "this model was asked for" and "this provider answered": which
deployment serves the call, and what the call record says about it (provider, served model, price model,
upstream time). Streams are opened and their first chunk awaited here, so a failure before the first byte is
still an ordinary error with its own status code.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from gateway.calls import CallRecord
from gateway.config import ModelRoute, Settings
from gateway.errors import ApexError, UpstreamError
from gateway.metrics import GatewayMetrics
from gateway.providers import ChatResult, Provider, StreamChunk

__all__ = ["Dispatcher"]


class Dispatcher:
    def __init__(self, settings: Settings, providers: dict[str, Provider], metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.providers = providers
        self.metrics = metrics

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _bind(self, call: CallRecord, route: ModelRoute) -> Provider:
        provider = self.providers[route.provider]
        call.provider, call.provider_kind, call.is_simulated = provider.name, provider.kind, provider.is_simulated
        call.served_model = route.target
        call.price_model = route.price_model or route.target
        if call.baseline_price_model is None:
            call.baseline_price_model = call.price_model
        return provider

    async def chat(self, call: CallRecord, body: dict[str, Any], route: ModelRoute) -> ChatResult:
        provider = self._bind(call, route)
        t_up = time.perf_counter()
        try:
            return await provider.chat(body, route.target)
        finally:
            call.upstream_s += time.perf_counter() - t_up

    async def open_stream(
        self, call: CallRecord, body: dict[str, Any], route: ModelRoute
    ) -> tuple[StreamChunk, AsyncIterator[StreamChunk]]:
        provider = self._bind(call, route)
        chunks = provider.chat_stream(body, route.target)
        t_up = time.perf_counter()
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            raise UpstreamError(
                f"provider {provider.name!r} returned an empty stream", code="upstream_empty_stream"
            ) from None
        except ApexError:
            await chunks.aclose()
            raise
        finally:
            call.upstream_s += time.perf_counter() - t_up
        return first, chunks
