"""CPU per request of the edge checks: request schemas (``gateway.schemas``) and the guarded body read.

    .venv/bin/python bench/schema_bench.py

Prints microseconds per call for a plain chat request, a chat request with tools and an image, an Anthropic
request and an embeddings request, and for reading a one-message body with and without the slow-body guard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import uvloop
from starlette.requests import Request

from gateway.inbound import BodyReadGuard, read_json_body
from gateway.schemas import validate_chat, validate_embeddings, validate_messages

PLAIN = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in one word."}]}
RICH = {
    "model": "gpt-4o-mini",
    "temperature": 0.2,
    "max_tokens": 256,
    "stream": True,
    "stream_options": {"include_usage": True},
    "messages": [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": "look", "description": "Look closer.", "parameters": {"type": "object"}},
        }
    ],
    "tool_choice": "auto",
    "response_format": {"type": "json_object"},
}
ANTHROPIC = {
    "model": "claude-sonnet-4",
    "max_tokens": 256,
    "system": "You are terse.",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello in one word."}]}],
}
EMBED = {"model": "text-embedding-3-small", "input": ["one", "two", "three"]}


def per_call_us(fn: Callable[[], Any], n: int = 200_000) -> float:
    for _ in range(1000):
        fn()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n * 1e6)
    return best


async def read_us(guard: BodyReadGuard | None, n: int = 100_000) -> float:
    raw = orjson.dumps(PLAIN)
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", str(len(raw)).encode())]}
    message = {"type": "http.request", "body": raw, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            await read_json_body(Request(dict(scope), receive), 1 << 20, guard=guard)
        best = min(best, (time.perf_counter() - t) / n * 1e6)
    return best


def main() -> None:
    for name, fn in [
        ("chat, plain", lambda: validate_chat(PLAIN)),
        ("chat, tools + image + tool turn", lambda: validate_chat(RICH)),
        ("anthropic messages", lambda: validate_messages(ANTHROPIC)),
        ("embeddings, 3 texts", lambda: validate_embeddings(EMBED)),
    ]:
        print(f"{name:34s} {per_call_us(fn):6.2f} us")
    print(f"{'read body, no guard':34s} {uvloop.run(read_us(None)):6.2f} us")
    print(f"{'read body, slow-body guard':34s} {uvloop.run(read_us(BodyReadGuard(30.0))):6.2f} us")


if __name__ == "__main__":
    main()
