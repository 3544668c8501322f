"""A local fake of Gemini's API, AI Studio and Vertex AI URL shapes, for tests (the network edge only).

    AI Studio  POST /v1beta/models/{model}:{method}                       key: ``x-goog-api-key`` or ``?key=``
    Vertex AI  POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}   ``Bearer`` token

Methods: ``generateContent``, ``streamGenerateContent`` (``?alt=sse``), ``batchEmbedContents``. Misbehaves by
model name: ``fake-429`` (RESOURCE_EXHAUSTED, ``retry-after: 3``), ``fake-500``, ``fake-slow`` (waits
``slow_s``), ``fake-cut`` (drops the stream after two chunks); ``*cached*`` reports 100 cached prompt tokens.
Otherwise "echo: <last user text>", or a ``functionCall`` of the first declared function with
``{"city": "Paris"}`` when the last user text mentions "weather". ``promptTokenCount`` = words + 4 per content
(+100 cached), plus what Gemini bills beyond text (``gemini_extra_prompt_tokens``: function declarations and
function calls by tiktoken, inline images at 258 tokens per 768-px tile, 258 when both sides fit 384 px);
``candidatesTokenCount`` = words answered (+5 for a function call).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import orjson
from aiohttp import web

from sandbox.fake_provider import FakeProvider, image_size_of


def gemini_image_tokens(size: tuple[int, int]) -> int:
    """Gemini's published rule: 258 tokens when both sides fit 384 px, else 258 per 768x768 tile."""
    w, h = size
    return 258 if w <= 384 and h <= 384 else 258 * math.ceil(w / 768) * math.ceil(h / 768)


def gemini_extra_prompt_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens Gemini bills beyond text: function declarations, earlier function calls, inline images."""
    from contracts.tokens import count_text_tokens

    total = count_text_tokens(orjson.dumps(body["tools"]).decode()) if body.get("tools") else 0
    for content in body.get("contents") or ():
        for part in content.get("parts") or ():
            if "functionCall" in part:
                total += count_text_tokens(orjson.dumps(part["functionCall"]).decode())
            elif "inlineData" in part:
                data = part["inlineData"]
                total += gemini_image_tokens(image_size_of(f"data:{data.get('mimeType')};base64,{data.get('data')}"))
            elif "fileData" in part:
                total += gemini_image_tokens(image_size_of(part["fileData"].get("fileUri", "")))
    return total


__all__ = ["FakeGemini"]


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response(
        {"error": {"code": status, "message": message, "status": code}}, status=status, headers=headers
    )


def _words(parts: Any) -> list[str]:
    out: list[str] = []
    for part in parts or ():
        if "text" in part:
            out += part["text"].split()
        elif "functionResponse" in part:
            out += orjson.dumps(part["functionResponse"]).decode().split()
    return out


def gemini_prompt_tokens(body: dict[str, Any]) -> int:
    """What the fake bills as ``promptTokenCount`` (before cached tokens): words + 4 per content, and the rest."""
    prompt = sum(len(_words(c.get("parts"))) + 4 for c in body.get("contents") or ())
    prompt += len(_words((body.get("systemInstruction") or {}).get("parts")))
    return prompt + gemini_extra_prompt_tokens(body)


class FakeGemini(FakeProvider):
    def __init__(
        self, *, slow_s: float = 2.0, api_key: str = "gemini-test-key", token: str = "vertex-test-token"
    ) -> None:
        super().__init__(slow_s=slow_s)
        self.api_key = api_key
        self.token = token

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1beta/models/{call}", self._studio)
        app.router.add_post("/v1/projects/{project}/locations/{location}/publishers/google/models/{call}", self._vertex)
        return app

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _studio(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if key != self.api_key:
            return _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        return await self._serve(request)

    async def _vertex(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        return await self._serve(request)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.urls.append(str(request.rel_url))
        model, _, method = request.match_info["call"].rpartition(":")
        if model == "fake-429":
            return _error(
                429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", **{"retry-after": "3"}
            )
        if model == "fake-500":
            return _error(500, "INTERNAL", "An internal error has occurred.")
        if model == "fake-slow":
            await asyncio.sleep(self.slow_s)
        if method == "batchEmbedContents":
            embeddings = [{"values": [len(_words(r["content"]["parts"])) / 10] * 8} for r in body.get("requests") or ()]
            return web.json_response({"embeddings": embeddings})
        contents = body.get("contents") or []
        prompt = gemini_prompt_tokens(body)
        last: dict[str, Any] = next((c for c in reversed(contents) if c.get("role") == "user"), {})
        last_text = " ".join(_words(last.get("parts")))
        declarations = [d for t in body.get("tools") or () for d in t.get("functionDeclarations") or ()]
        call = declarations[0]["name"] if declarations and "weather" in last_text.lower() else None
        text = "Let me check." if call else "echo: " + last_text
        words = text.split(" ")
        cached = 100 if "cached" in model else 0
        usage = {
            "promptTokenCount": prompt + cached,
            "candidatesTokenCount": len(words) + (5 if call else 0),
            "totalTokenCount": prompt + cached + len(words) + (5 if call else 0),
            **({"cachedContentTokenCount": cached} if cached else {}),
        }
        parts: list[dict[str, Any]] = [{"text": text}]
        if call:
            parts.append({"functionCall": {"name": call, "args": {"city": "Paris"}}})
        if method == "generateContent":
            answer = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            return web.json_response({"candidates": [answer], "usageMetadata": usage, "modelVersion": model})
        if method != "streamGenerateContent" or request.query.get("alt") != "sse":
            return _error(400, "INVALID_ARGUMENT", f"unsupported call {method} (the fake streams only with alt=sse)")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        pieces = [{"text": ("" if i == 0 else " ") + w} for i, w in enumerate(words)] + parts[1:]
        for i, part in enumerate(pieces):
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
            last_piece = i == len(pieces) - 1
            if last_piece:
                candidate["finishReason"] = "STOP"
            partial = {**usage, "candidatesTokenCount": i + 1} if not last_piece else usage
            event = {"candidates": [candidate], "usageMetadata": partial, "modelVersion": model}
            await resp.write(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
            if i == 1 and model == "fake-cut":
                assert request.transport is not None
                request.transport.close()
                return resp
        await resp.write_eof()
        return resp
