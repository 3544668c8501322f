"""Anthropic's Messages API as an upstream: requests, answers and streams translated to the canonical format."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from contracts.settings import ProviderSettings
from gateway.errors import InvalidRequestError, UpstreamError
from gateway.providers import provider_secret, register_kind
from gateway.providers.base import ChatResult, EmbeddingResult, StreamChunk, Usage, attempt_timeout
from gateway.providers.sse import sse_json
from gateway.upstream import Transport
from gateway.wire.anthropic.translate_upstream import (
    AnthropicStreamReader,
    from_anthropic_response,
    to_anthropic_request,
)
from gateway.wire.openai.provider import parse_json_body, upstream_error

__all__ = ["DEFAULT_ANTHROPIC_URL", "DEFAULT_ANTHROPIC_VERSION", "AnthropicProvider"]

DEFAULT_ANTHROPIC_URL = "https://api.anthropic.com"
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider:
    kind = "anthropic"
    is_simulated = False
    enforces_timeout = True

    def __init__(
        self,
        name: str,
        base_url: str | None,
        api_key: str | None,
        transport: Transport,
        *,
        api_version: str | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        base = (base_url or DEFAULT_ANTHROPIC_URL).rstrip("/")
        base = base.removesuffix("/v1")  # accept both the SDK-style base and an OpenAI-style ".../v1"
        self._url = base + "/v1/messages"
        self._headers = {
            "content-type": "application/json",
            "anthropic-version": api_version or DEFAULT_ANTHROPIC_VERSION,
        }
        if api_key:
            self._headers["x-api-key"] = api_key
        self._transport = transport
        self._timeout = timeout_s
        self._connect_timeout = connect_timeout_s

    async def chat(self, request: dict[str, Any], model: str, *, timeout_s: float | None = None) -> ChatResult:
        body = orjson.dumps(to_anthropic_request(request, model, stream=False))
        status, headers, raw = await self._transport.post(
            self._url,
            self._headers,
            body,
            timeout=attempt_timeout(self._timeout, timeout_s),
            connect_timeout=self._connect_timeout,
        )
        if status >= 400:
            raise upstream_error(self.name, status, headers, raw)
        data = from_anthropic_response(parse_json_body(self.name, raw), model)
        return ChatResult(
            body=orjson.dumps(data),
            usage=Usage.from_openai(data["usage"]),
            served_model=data["model"],
            finish_reason=data["choices"][0]["finish_reason"],
        )

    async def chat_stream(self, request: dict[str, Any], model: str) -> AsyncGenerator[StreamChunk, None]:
        body = orjson.dumps(to_anthropic_request(request, model, stream=True))
        async with self._transport.stream(
            self._url, self._headers, body, timeout=self._timeout, connect_timeout=self._connect_timeout
        ) as resp:
            if resp.status >= 400:
                raise upstream_error(self.name, resp.status, resp.headers, await resp.read())
            reader = AnthropicStreamReader(model)
            async for event in sse_json(self.name, resp.lines()):
                if event.get("type") == "error":
                    err = event.get("error") or {}
                    raise UpstreamError(
                        f"provider {self.name!r} failed mid-stream: {err.get('type')}: {err.get('message')}",
                        code="upstream_stream_error",
                    )
                for chunk in reader.feed(event):
                    yield StreamChunk(orjson.dumps(chunk), chunk)
                if reader.done:
                    return
            raise UpstreamError(
                f"provider {self.name!r} ended the stream without message_stop", code="upstream_stream_interrupted"
            )

    async def embed(self, request: dict[str, Any], model: str, *, timeout_s: float | None = None) -> EmbeddingResult:
        raise InvalidRequestError(
            f"provider {self.name!r} (Anthropic) has no embeddings API; route this model to another provider.",
            param="model",
            code="embeddings_not_supported",
        )

    async def close(self) -> None:
        return None


def _anthropic(p: ProviderSettings, transport: Transport) -> AnthropicProvider:
    timeouts = {"timeout_s": p.timeout_s, "connect_timeout_s": p.connect_timeout_s}
    return AnthropicProvider(p.name, p.base_url, provider_secret(p), transport, api_version=p.api_version, **timeouts)


register_kind("anthropic", _anthropic)
