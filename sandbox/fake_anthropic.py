"""A local fake of Anthropic's Messages API (``POST /v1/messages``), for tests (the network edge only).

Speaks the real wire format, SSE events included; checks ``x-api-key`` and ``anthropic-version``; misbehaves
by model name like ``sandbox.fake_provider``:

    fake-429      429 rate_limit_error with ``retry-after: 3``
    fake-529      529 overloaded_error
    fake-500      500 api_error
    fake-slow     waits ``slow_s`` before the first byte
    fake-cut      streams two text deltas, then drops the connection
    fake-error    streams two text deltas, then an ``error`` event (overloaded_error)
    *cached*      (anywhere in the name) reports 100 cache-read and 10 cache-write input tokens
    anything else "echo: <last user text>"; a call of the first tool with ``{"city": "Paris"}`` when tools are
                  offered and the last user text mentions "weather"

Usage: ``input_tokens`` = words of the system prompt and all text + 4 per message, plus what Anthropic bills
beyond text: tool definitions (their JSON, tiktoken) and the tool-use system prompt (346 tokens, 313 with
``tool_choice`` any/tool), earlier ``tool_use`` blocks, and images at ceil(w*h/750) after the long edge is fitted
to 1568 px, at most 1,600 (real sizes: ``sandbox.fake_provider.image_size_of``); ``output_tokens`` = words
answered (+5 for a tool call).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import orjson
from aiohttp import web

from sandbox.fake_provider import FakeProvider, image_size_of

_TOOL_SYSTEM_PROMPT = {"auto": 346, "none": 346, "any": 313, "tool": 313}


def anthropic_image_tokens(size: tuple[int, int]) -> int:
    """Anthropic's published rule: tokens = width x height / 750 after fitting the long edge to 1568 px."""
    w, h = size
    scale = min(1.0, 1568 / max(w, h))
    return min(math.ceil(math.ceil(w * scale) * math.ceil(h * scale) / 750), 1600)


def _count(text: str) -> int:
    from contracts.tokens import count_text_tokens

    return count_text_tokens(text)


def anthropic_extra_input_tokens(body: dict[str, Any]) -> int:
    """Input tokens Anthropic bills beyond text: tool definitions and their system prompt, tool calls, images."""
    total = 0
    if body.get("tools"):
        choice = (body.get("tool_choice") or {}).get("type", "auto")
        total += _TOOL_SYSTEM_PROMPT.get(choice, 346) + _count(orjson.dumps(body["tools"]).decode())
    for msg in body.get("messages") or ():
        content = msg.get("content")
        for block in content if isinstance(content, list) else ():
            if block.get("type") == "tool_use":
                total += 3 + _count(str(block.get("name"))) + _count(orjson.dumps(block.get("input")).decode())
            elif block.get("type") == "image":
                source = block.get("source") or {}
                url = source.get("url") or f"data:{source.get('media_type')};base64,{source.get('data')}"
                total += anthropic_image_tokens(image_size_of(url))
    return total


__all__ = ["FakeAnthropic"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    out = []
    for block in content or ():
        if block.get("type") == "text":
            out.append(block.get("text") or "")
        elif block.get("type") == "tool_result":
            out.append(_text(block.get("content")))
    return " ".join(out)


def _error(status: int, kind: str, message: str, **headers: str) -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return web.json_response(body, status=status, headers=headers)


def anthropic_input_tokens(body: dict[str, Any]) -> int:
    """What the fake bills as ``input_tokens``: words of the system prompt and all text + 4 per message, and what
    Anthropic bills beyond text."""
    system = body.get("system")
    words = len(_text(system).split()) if system else 0
    for msg in body.get("messages") or ():
        words += len(_text(msg.get("content")).split()) + 4
    return words + anthropic_extra_input_tokens(body)


class FakeAnthropic(FakeProvider):
    def __init__(self, *, slow_s: float = 2.0, api_key: str = "sk-ant-test") -> None:
        super().__init__(slow_s=slow_s)
        self.api_key = api_key

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        return app

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _usage(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        cached = "cached" in model
        return {
            "input_tokens": anthropic_input_tokens(body),
            "cache_read_input_tokens": 100 if cached else 0,
            "cache_creation_input_tokens": 10 if cached else 0,
            "output_tokens": 1,
        }

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if request.headers.get("x-api-key") != self.api_key:
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        if not isinstance(body.get("max_tokens"), int):
            return _error(400, "invalid_request_error", "max_tokens: Field required")
        model = body.get("model", "")
        if model == "fake-429":
            return _error(
                429, "rate_limit_error", "Number of requests has exceeded your rate limit", **{"retry-after": "3"}
            )
        if model == "fake-529":
            return _error(529, "overloaded_error", "Overloaded")
        if model == "fake-500":
            return _error(500, "api_error", "Internal server error")
        if model == "fake-slow":
            await asyncio.sleep(self.slow_s)
        last: dict[str, Any] = next((m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {})
        last_text = _text(last.get("content"))
        tools = body.get("tools") or []
        tool = tools[0]["name"] if tools and "weather" in last_text.lower() else None
        text = "Let me check." if tool else "echo: " + last_text
        usage = self._usage(body, model)
        words = text.split(" ")
        output_tokens = len(words) + (5 if tool else 0)
        stop_reason = "tool_use" if tool else "end_turn"
        tool_block = {"type": "tool_use", "id": "toolu_fake_1", "name": tool, "input": {"city": "Paris"}}
        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}] + ([tool_block] if tool else []),
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": output_tokens},
        }
        if not body.get("stream"):
            return web.json_response(message)

        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)

        async def send(name: str, data: dict[str, Any]) -> None:
            await resp.write(b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n")

        await send("message_start", {"message": {**message, "content": [], "stop_reason": None, "usage": usage}})
        await send("ping", {})
        await send("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        for i, word in enumerate(words):
            delta = {"type": "text_delta", "text": ("" if i == 0 else " ") + word}
            await send("content_block_delta", {"index": 0, "delta": delta})
            if i == 1 and model == "fake-cut":
                assert request.transport is not None
                request.transport.close()
                return resp
            if i == 1 and model == "fake-error":
                await send("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
                await resp.write_eof()
                return resp
        await send("content_block_stop", {"index": 0})
        if tool:
            await send("content_block_start", {"index": 1, "content_block": {**tool_block, "input": {}}})
            for part in ('{"city": ', '"Paris"}'):
                await send(
                    "content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": part}}
                )
            await send("content_block_stop", {"index": 1})
        final: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": None}
        await send("message_delta", {"delta": final, "usage": {"output_tokens": output_tokens}})
        await send("message_stop", {})
        await resp.write_eof()
        return resp
