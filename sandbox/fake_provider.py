"""A local fake of the OpenAI chat-completions API, for tests and benchmarks (the network edge only).

It speaks the real wire format, streaming included, and misbehaves on request, chosen by model name:

    fake-429      429 with ``Retry-After: 2``
    fake-500      500 with an OpenAI error body
    fake-401      401 (the gateway's upstream key is wrong)
    fake-slow     waits ``slow_s`` before answering
    fake-cut      streams a few chunks, then drops the connection without ``[DONE]``
    fake-nousage  answers without a ``usage`` object (stream and not)
    anything else a normal answer: "echo: <last user message>" with exact usage

Usage: ``prompt_tokens`` = words of each message's text + 4 per message, plus what OpenAI bills beyond text
(``openai_extra_prompt_tokens``): tool definitions by the cookbook's rule, earlier tool calls, a response format's
schema (tiktoken), and images by OpenAI's tile rule for the model, at the size the image really has (decoded with
Pillow; a remote URL's size is a ``WxH`` in the URL, else 1024x1024, since the fake fetches nothing).

When the request offers tools and the last user message mentions "weather", the answer is a call of the first
tool with ``{"city": "Paris"}``. Azure OpenAI deployment URLs (``/openai/deployments/{name}/...``, which need
the ``api-key`` header and an ``api-version``) serve the same answers, with the deployment as the model.
``/v1/embeddings`` answers deterministic 8-dimensional vectors, one token per word (``fake-500``: a 500).

Every request body it receives is kept in ``FakeProvider.requests`` for assertions.
Run standalone: ``python -m sandbox.fake_provider --port 18001``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import math
import re
import time
from typing import Any

import orjson
from aiohttp import web

from sandbox.loopback import LoopbackServer

__all__ = ["FakeProvider"]


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


_SIZE_IN_URL = re.compile(r"(\d{1,5})x(\d{1,5})")
REMOTE_IMAGE_SIZE = (1024, 1024)
"""The size of a remote image whose URL names none: the fake fetches nothing."""


def image_size_of(url: str) -> tuple[int, int]:
    """The image's real size, as a provider sees it after fetching or decoding it."""
    if url.startswith("data:"):
        from PIL import Image  # decoding, not header parsing: the fake must not share the gateway's shortcut

        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as img:
            return img.size
    m = _SIZE_IN_URL.search(url)
    return (int(m[1]), int(m[2])) if m else REMOTE_IMAGE_SIZE


def openai_image_tokens(size: tuple[int, int], detail: str, model: str) -> int:
    """OpenAI's published rule: ``low`` = base; else fit 2048x2048, short side to 768, base + tiles x per-tile."""
    base, per_tile = (2833, 5667) if "gpt-4o-mini" in model else (85, 170)
    if detail == "low":
        return base
    scale = min(1.0, 2048 / max(size))
    w, h = size[0] * scale, size[1] * scale
    scale = min(1.0, 768 / min(w, h))
    tiles = math.ceil(max(1, math.floor(w * scale)) / 512) * math.ceil(max(1, math.floor(h * scale)) / 512)
    return base + tiles * per_tile


def _tokens(text: str) -> int:
    from contracts.tokens import count_text_tokens

    return count_text_tokens(text)


def openai_tools_tokens(tools: list[Any]) -> int:
    """The OpenAI cookbook's count of function definitions (gpt-4o): 7 per function, 3 per property, 12 at the end."""
    total = 0
    for tool in tools:
        fn = tool.get("function") or {}
        total += 7 + _tokens(f"{fn.get('name', '')}:{str(fn.get('description', '')).rstrip('.')}")
        props = (fn.get("parameters") or {}).get("properties") or {}
        if props:
            total += 3
            for key, prop in props.items():
                total += 3 + _tokens(key)
                for field, value in prop.items():
                    if field == "enum":
                        total += -3 + sum(3 + _tokens(str(item)) for item in value)
                    else:
                        total += _tokens(f"{field}:{value}" if isinstance(value, str) else orjson.dumps(value).decode())
        total += 12
    return total


def openai_extra_prompt_tokens(body: dict[str, Any], model: str) -> int:
    """Prompt tokens OpenAI bills beyond message text: tools, tool calls, response_format, image parts."""
    total = openai_tools_tokens(body["tools"]) if body.get("tools") else 0
    schema = body.get("response_format")
    if isinstance(schema, dict) and schema.get("type") == "json_schema":
        total += 10 + _tokens(orjson.dumps(schema.get("json_schema")).decode())
    for msg in body.get("messages") or ():
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") or {}
            total += 3 + _tokens(str(fn.get("name", ""))) + _tokens(str(fn.get("arguments", "")))
        content = msg.get("content")
        for part in content if isinstance(content, list) else ():
            if part.get("type") == "image_url":
                image = part["image_url"]
                url, detail = (image, "auto") if isinstance(image, str) else (image["url"], image.get("detail", "auto"))
                total += openai_image_tokens(image_size_of(url), detail, model)
    return total


def _words_of(content: Any) -> int:
    if isinstance(content, list):  # the text parts; media are billed by their own rule
        return sum(len(p["text"].split()) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return len(str(content).split())


def openai_prompt_tokens(body: dict[str, Any]) -> int:
    """What the fake bills as ``prompt_tokens``: words + 4 per message, and what OpenAI bills beyond text."""
    words = sum(_words_of(m.get("content", "")) + 4 for m in body.get("messages", []))
    return words + openai_extra_prompt_tokens(body, str(body.get("model", "")))


def _last_user_text(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user" and isinstance(msg.get("content"), str):
            return msg["content"]
    return ""


def _weather_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    answered = (body.get("messages") or [{}])[-1].get("role") == "tool"  # the tool result came back: answer it
    if not tools or answered or "weather" not in _last_user_text(body).lower():
        return None
    name = (tools[0].get("function") or {}).get("name")
    return {"id": "call_fake_1", "type": "function", "function": {"name": name, "arguments": '{"city": "Paris"}'}}


class FakeProvider(LoopbackServer):
    def __init__(self, *, slow_s: float = 2.0, record: bool = True, azure_key: str = "azure-test-key") -> None:
        self.slow_s = slow_s
        self.record = record
        self.azure_key = azure_key
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.mode: str | None = None
        """Behave as if every request asked for this model (e.g. ``"fake-500"``) until reset to None."""
        self.next_modes: list[str] = []
        """One-shot behaviours, consumed one per request before ``mode`` applies (``"ok"`` = a normal answer)."""
        self.retry_after = "2"
        self.urls: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._azure)
        app.router.add_get("/health", _health)
        return app

    async def _read(self, request: web.Request) -> dict[str, Any]:
        body = orjson.loads(await request.read())
        if self.record:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self.urls.append(str(request.rel_url))
        return body

    async def _azure(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request)
        if request.headers.get("api-key") != self.azure_key:
            error = {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}
            return web.json_response({"error": error}, status=401)
        if not request.query.get("api-version"):
            error = {"code": "404", "message": "Resource not found"}  # what Azure answers without api-version
            return web.json_response({"error": error}, status=404)
        body["model"] = request.match_info["deployment"]
        if request.path.endswith("/embeddings"):
            return self._embed(body)
        return await self._answer(request, body)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return self._embed(await self._read(request))

    def _embed(self, body: dict[str, Any]) -> web.StreamResponse:
        if body.get("model") == "fake-500":
            return web.json_response(
                {"error": {"message": "The server had an error", "type": "server_error"}}, status=500
            )
        inputs = body.get("input")
        items: list[Any] = [inputs] if isinstance(inputs, str) else list(inputs or ())
        data = [
            {"object": "embedding", "index": i, "embedding": [((len(str(item)) + k) % 7) / 7 for k in range(8)]}
            for i, item in enumerate(items)
        ]
        tokens = sum(len(str(item).split()) for item in items)
        payload = {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return web.json_response(payload)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, await self._read(request))

    async def _answer(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        model = self.next_modes.pop(0) if self.next_modes else (self.mode or body.get("model", ""))
        if model == "fake-429":
            return web.json_response(
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                status=429,
                headers={"Retry-After": self.retry_after},
            )
        if model == "fake-500":
            return web.json_response(
                {"error": {"message": "The server had an error", "type": "server_error"}}, status=500
            )
        if model == "fake-401":
            return web.json_response(
                {
                    "error": {
                        "message": "Incorrect API key",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        if model == "fake-slow":
            await asyncio.sleep(self.slow_s)
        text = "echo: " + _last_user_text(body)
        tool_call = _weather_call(body)
        if tool_call is not None:
            text = "Let me check."
        words = text.split(" ")
        prompt_tokens = openai_prompt_tokens(body)
        completion_tokens = len(words) + (5 if tool_call else 0)
        finish_reason = "tool_calls" if tool_call else "stop"
        created = int(time.time())
        if not body.get("stream"):
            payload: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": text,
                            **({"tool_calls": [tool_call]} if tool_call else {}),
                        },
                        "finish_reason": finish_reason,
                        "logprobs": None,
                    }
                ],
            }
            if model != "fake-nousage":
                payload["usage"] = _usage(prompt_tokens, completion_tokens)
            return web.Response(body=orjson.dumps(payload), content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        usage_field = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
                **usage_field,
                **extra,
            }
            return b"data: " + orjson.dumps(data) + b"\n\n"

        await resp.write(chunk({"role": "assistant", "content": ""}))
        for i, word in enumerate(words):
            await resp.write(chunk({"content": ("" if i == 0 else " ") + word}))
            if model == "fake-cut" and i == 1:
                assert request.transport is not None
                request.transport.close()  # drop the connection mid-answer
                return resp
            if model == "fake-slow":
                await asyncio.sleep(0.01)
        if tool_call is not None:
            args = tool_call["function"]["arguments"]
            head = {**tool_call, "index": 0, "function": {"name": tool_call["function"]["name"], "arguments": ""}}
            await resp.write(chunk({"tool_calls": [head]}))
            for part in (args[: len(args) // 2], args[len(args) // 2 :]):
                await resp.write(chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
        await resp.write(chunk({}, finish_reason))
        if include_usage and model != "fake-nousage":
            await resp.write(chunk(None, usage=_usage(prompt_tokens, completion_tokens)))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    # -- running it in a background thread (tests) ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18001)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    web.run_app(
        FakeProvider(record=False).app(),
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda *_: None,
    )


async def _health(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


if __name__ == "__main__":
    main()
