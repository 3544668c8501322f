"""Google Gemini as an upstream: AI Studio (kind ``gemini``, API key) and Vertex AI (kind ``vertex``, bearer token).

Both take the same ``generateContent`` body; only the URL and the credential differ.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import quote

import orjson

from contracts.settings import ProviderSettings
from contracts.tokens import count_text_tokens
from gateway.errors import InvalidRequestError, UpstreamError
from gateway.providers import provider_secret, register_kind
from gateway.providers.base import ChatResult, EmbeddingResult, StreamChunk, Usage, attempt_timeout
from gateway.providers.sse import sse_json
from gateway.upstream import Transport
from gateway.wire.gemini.translate import (
    GeminiStreamReader,
    from_gemini_embeddings,
    from_gemini_response,
    to_gemini_embeddings,
    to_gemini_request,
)
from gateway.wire.openai.provider import parse_json_body, upstream_error

__all__ = ["DEFAULT_GEMINI_URL", "GeminiProvider", "vertex_base_url"]

DEFAULT_GEMINI_URL = "https://generativelanguage.googleapis.com"


def vertex_base_url(location: str) -> str:
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return f"https://{host}"


class GeminiProvider:
    is_simulated = False
    enforces_timeout = True

    def __init__(
        self,
        name: str,
        kind: str,
        base_url: str | None,
        api_key: str | None,
        transport: Transport,
        *,
        project: str | None = None,
        location: str | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.kind = kind
        self._headers = {"content-type": "application/json"}
        if kind == "vertex":
            assert project and location, "vertex needs project and location (checked by the settings)"
            base = (base_url or vertex_base_url(location)).rstrip("/").removesuffix("/v1")
            self._prefix = f"{base}/v1/projects/{quote(project)}/locations/{quote(location)}/publishers/google/models/"
            if api_key:
                self._headers["authorization"] = f"Bearer {api_key}"
        else:
            base = (base_url or DEFAULT_GEMINI_URL).rstrip("/").removesuffix("/v1beta")
            self._prefix = f"{base}/v1beta/models/"
            if api_key:
                self._headers["x-goog-api-key"] = api_key  # a header keeps the key out of URLs and logs
        self._transport = transport
        self._timeout = timeout_s
        self._connect_timeout = connect_timeout_s

    def _url(self, model: str, method: str) -> str:
        return f"{self._prefix}{quote(model, safe='')}:{method}"

    async def _post(self, url: str, body: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
        status, headers, raw = await self._transport.post(
            url,
            self._headers,
            orjson.dumps(body),
            timeout=attempt_timeout(self._timeout, timeout_s),
            connect_timeout=self._connect_timeout,
        )
        if status >= 400:
            raise upstream_error(self.name, status, headers, raw)
        return parse_json_body(self.name, raw)

    async def chat(self, request: dict[str, Any], model: str, *, timeout_s: float | None = None) -> ChatResult:
        data = from_gemini_response(
            await self._post(self._url(model, "generateContent"), to_gemini_request(request), timeout_s), model
        )
        return ChatResult(
            body=orjson.dumps(data),
            usage=Usage.from_openai(data["usage"]),
            served_model=model,
            finish_reason=data["choices"][0]["finish_reason"],
        )

    async def chat_stream(self, request: dict[str, Any], model: str) -> AsyncGenerator[StreamChunk, None]:
        url = self._url(model, "streamGenerateContent") + "?alt=sse"
        body = orjson.dumps(to_gemini_request(request))
        async with self._transport.stream(
            url, self._headers, body, timeout=self._timeout, connect_timeout=self._connect_timeout
        ) as resp:
            if resp.status >= 400:
                raise upstream_error(self.name, resp.status, resp.headers, await resp.read())
            reader = GeminiStreamReader(model)
            async for event in sse_json(self.name, resp.lines()):
                if "error" in event and "candidates" not in event:
                    err = event["error"] if isinstance(event["error"], dict) else {"message": event["error"]}
                    raise UpstreamError(
                        f"provider {self.name!r} failed mid-stream: {err.get('message')}", code="upstream_stream_error"
                    )
                for chunk in reader.feed(event):
                    yield StreamChunk(orjson.dumps(chunk), chunk)
            if not reader.finished:
                # Gemini's stream has no terminator: a stream with no finishReason was cut off
                raise UpstreamError(
                    f"provider {self.name!r} ended the stream without a finishReason",
                    code="upstream_stream_interrupted",
                )
            usage = reader.finish()
            yield StreamChunk(orjson.dumps(usage), usage)

    async def embed(self, request: dict[str, Any], model: str, *, timeout_s: float | None = None) -> EmbeddingResult:
        if self.kind == "vertex":
            raise InvalidRequestError(
                f"provider {self.name!r}: embeddings through Vertex AI are not supported by Apex yet; "
                "use a 'gemini' (AI Studio) provider for embedding models.",
                param="model",
                code="embeddings_not_supported",
            )
        inputs = request.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise InvalidRequestError(
                f"provider {self.name!r} (Gemini) embeds text only; send 'input' as a string or a list of strings.",
                param="input",
                code="invalid_value",
            )
        data = await self._post(self._url(model, "batchEmbedContents"), to_gemini_embeddings(request, model), timeout_s)
        prompt_tokens = sum(count_text_tokens(t, model) for t in texts)
        body = from_gemini_embeddings(data, model, prompt_tokens)
        return EmbeddingResult(body=orjson.dumps(body), usage=Usage(prompt_tokens=prompt_tokens), served_model=model)

    async def close(self) -> None:
        return None


def _gemini(p: ProviderSettings, transport: Transport) -> GeminiProvider:
    timeouts = {"timeout_s": p.timeout_s, "connect_timeout_s": p.connect_timeout_s}
    return GeminiProvider(
        p.name, p.kind, p.base_url, provider_secret(p), transport, project=p.project, location=p.location, **timeouts
    )


register_kind("gemini", _gemini)
register_kind("vertex", _gemini, requires=("project", "location"))
