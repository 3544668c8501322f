"""OpenAI and any OpenAI-compatible upstream (vLLM, Together, Groq, Azure OpenAI, a local fake, ...).

Subclasses change only where a call goes and how it authenticates (``_url``, ``_auth_headers``); Azure is one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson

from contracts.settings import ProviderSettings
from gateway.errors import (
    ApexError,
    NotFoundError,
    UpstreamBadRequestError,
    UpstreamError,
    UpstreamRateLimitError,
)
from gateway.providers import provider_secret, register_kind
from gateway.providers.base import ChatResult, EmbeddingResult, StreamChunk, Usage, attempt_timeout
from gateway.upstream import Transport

__all__ = ["OpenAICompatibleProvider", "parse_json_body", "upstream_error"]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def upstream_error(provider: str, status: int, headers: Mapping[str, str], body: bytes) -> ApexError:
    """Map an upstream error answer to the gateway's error, keeping the provider's message."""
    try:
        err = orjson.loads(body).get("error") or {}
        detail = err.get("message") if isinstance(err, dict) else str(err)
    except Exception:
        detail = None
    detail = (detail or body[:200].decode("utf-8", "replace") or f"HTTP {status}").strip()
    msg = f"provider {provider!r} answered {status}: {detail}"
    if status == 429:
        return UpstreamRateLimitError(msg, code="upstream_rate_limited", retry_after=_retry_after(headers))
    if status in (401, 403):
        return UpstreamError(
            f"provider {provider!r} rejected Apex's credentials ({status}); check the provider's api_key_env",
            code="upstream_auth_failed",
        )
    if status == 404:
        return NotFoundError(msg, param="model", code="model_not_found")
    if status in (503, 529):
        # Anthropic's 529 overloaded_error and everyone's 503: the provider is up but shedding load
        overloaded = UpstreamError(msg, code="upstream_overloaded", retry_after=_retry_after(headers))
        overloaded.status = 503
        return overloaded
    if 400 <= status < 500:
        return UpstreamBadRequestError(msg, code="upstream_bad_request")
    return UpstreamError(msg, code=f"upstream_{status}")


class OpenAICompatibleProvider:
    is_simulated = False
    enforces_timeout = True

    def __init__(
        self,
        name: str,
        kind: str,
        base_url: str,
        api_key: str | None,
        transport: Transport,
        *,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.kind = kind
        self._base_url = base_url.rstrip("/")
        self._headers = {"content-type": "application/json", "accept-encoding": "gzip", **self._auth_headers(api_key)}
        self._transport = transport
        self._timeout = timeout_s
        self._connect_timeout = connect_timeout_s

    def _url(self, endpoint: str, model: str) -> str:
        """Where ``endpoint`` (``chat/completions``, ``embeddings``) for ``model`` is served."""
        return f"{self._base_url}/{endpoint}"

    def _auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def _body(self, request: dict[str, Any], model: str, *, stream: bool) -> bytes:
        body = dict(request)
        body["model"] = model
        if stream:
            body["stream"] = True
            opts = dict(body.get("stream_options") or {})
            opts["include_usage"] = True  # usage is always captured; the gateway strips it if not asked for
            body["stream_options"] = opts
        return orjson.dumps(body)

    async def chat(self, request: dict[str, Any], model: str, *, timeout_s: float | None = None) -> ChatResult:
        status, headers, raw = await self._transport.post(
            self._url("chat/completions", model),
            self._headers,
            self._body(request, model, stream=False),
            timeout=attempt_timeout(self._timeout, timeout_s),
            connect_timeout=self._connect_timeout,
        )
        if status >= 400:
            raise upstream_error(self.name, status, headers, raw)
        data = parse_json_body(self.name, raw)
        choices = data.get("choices") or [{}]
        return ChatResult(
            body=raw,
            usage=Usage.from_openai(data.get("usage")),
            served_model=data.get("model") or model,
            finish_reason=choices[0].get("finish_reason") if isinstance(choices[0], dict) else None,
        )

    async def chat_stream(self, request: dict[str, Any], model: str) -> AsyncGenerator[StreamChunk, None]:
        async with self._transport.stream(
            self._url("chat/completions", model),
            self._headers,
            self._body(request, model, stream=True),
            timeout=self._timeout,
            connect_timeout=self._connect_timeout,
        ) as resp:
            if resp.status >= 400:
                raise upstream_error(self.name, resp.status, resp.headers, await resp.read())
            done = False
            async for line in resp.lines():
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue  # comments, event: lines, blank separators
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    break
                try:
                    data = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    raise UpstreamError(
                        f"provider {self.name!r} sent a stream chunk that is not JSON",
                        code="upstream_bad_response",
                    ) from None
                if isinstance(data, dict) and "error" in data and "choices" not in data:
                    err = data["error"] if isinstance(data["error"], dict) else {"message": str(data["error"])}
                    raise UpstreamError(
                        f"provider {self.name!r} failed mid-stream: {err.get('message')}",
                        code="upstream_stream_error",
                    )
                yield StreamChunk(payload, data)
            if not done:
                raise UpstreamError(
                    f"provider {self.name!r} ended the stream without [DONE]",
                    code="upstream_stream_interrupted",
                )

    async def embed(self, request: dict[str, Any], model: str, *, timeout_s: float | None = None) -> EmbeddingResult:
        status, headers, raw = await self._transport.post(
            self._url("embeddings", model),
            self._headers,
            orjson.dumps({**request, "model": model}),
            timeout=attempt_timeout(self._timeout, timeout_s),
            connect_timeout=self._connect_timeout,
        )
        if status >= 400:
            raise upstream_error(self.name, status, headers, raw)
        data = parse_json_body(self.name, raw)
        return EmbeddingResult(body=raw, usage=Usage.from_openai(data.get("usage")), served_model=model)

    async def close(self) -> None:
        return None


def parse_json_body(provider: str, raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamError(
            f"provider {provider!r} returned a body that is not a JSON object", code="upstream_bad_response"
        )
    return data


def _openai_like(p: ProviderSettings, transport: Transport) -> OpenAICompatibleProvider:
    assert p.base_url is not None
    return OpenAICompatibleProvider(
        p.name,
        p.kind,
        p.base_url,
        provider_secret(p),
        transport,
        timeout_s=p.timeout_s,
        connect_timeout_s=p.connect_timeout_s,
    )


register_kind("openai", _openai_like, requires=("base_url",))
register_kind("openai_compatible", _openai_like, requires=("base_url",))
