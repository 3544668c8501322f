"""An offline provider that answers in the real OpenAI chat-completions wire format.

Answers are deterministic for a given (model, messages, max_tokens): the same request always yields the same
text, token counts and latency. Prompt tokens are counted with the real tokenizer, and what providers bill beyond
text is added by their published rules (tool definitions and calls, a response format's schema, images and audio
by ``contracts.media_tokens`` for the model); the answer's length and the
latency (time to first token + per-token time) follow a per-model profile, scaled by ``latency_scale``.
Events it serves are marked ``is_simulated`` so nobody mistakes them for billed spend.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import orjson

from contracts.media_tokens import audio_tokens, image_tokens
from contracts.settings import ProviderSettings
from contracts.tokens import count_message_tokens, count_text_tokens
from gateway.providers import register_kind
from gateway.providers.base import ChatResult, EmbeddingResult, StreamChunk, Usage
from gateway.upstream import Transport

__all__ = ["EMBEDDING_DIMS", "SimulatedProvider"]

EMBEDDING_DIMS = 256


@dataclass(frozen=True)
class _Profile:
    ttft_s: float
    per_token_s: float
    min_tokens: int
    max_tokens: int


_PROFILES = {
    "mini": _Profile(0.25, 0.006, 20, 220),
    "flash": _Profile(0.30, 0.004, 20, 260),
    "large": _Profile(0.45, 0.012, 40, 420),
    "claude": _Profile(0.60, 0.014, 40, 450),
}

_WORDS = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "on",
    "be",
    "this",
    "by",
    "are",
    "can",
    "or",
    "from",
    "at",
    "an",
    "which",
    "you",
    "your",
    "we",
    "data",
    "model",
    "cost",
    "request",
    "customer",
    "value",
    "answer",
    "result",
    "example",
    "first",
    "next",
    "because",
    "however",
    "therefore",
    "step",
    "number",
    "total",
    "price",
    "per",
    "token",
    "each",
    "time",
    "system",
    "user",
    "order",
    "report",
    "summary",
    "table",
    "query",
    "function",
    "return",
    "value",
    "list",
    "item",
    "account",
    "invoice",
    "budget",
    "team",
    "usage",
    "latency",
    "cache",
    "route",
    "policy",
    "quality",
    "error",
    "retry",
]


def _profile(model: str) -> _Profile:
    m = model.lower()
    if "mini" in m or "nano" in m or "haiku" in m:
        return _PROFILES["mini"]
    if "flash" in m:
        return _PROFILES["flash"]
    if "claude" in m:
        return _PROFILES["claude"]
    return _PROFILES["large"]


def _json_tokens(value: Any, model: str) -> int:
    return count_text_tokens(orjson.dumps(value).decode(), model)


def _extra_prompt_tokens(request: dict[str, Any], model: str) -> int:
    """Prompt tokens beyond message text: tools (+12 per function, OpenAI's wrapper), tool calls, schemas, media."""
    tools = request.get("tools")
    total = _json_tokens(tools, model) + 12 * len(tools) if isinstance(tools, list) and tools else 0
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        total += 10 + _json_tokens(fmt.get("json_schema"), model)
    for msg in request.get("messages") or ():
        if not isinstance(msg, dict):
            continue
        for call in msg.get("tool_calls") or ():
            total += 3 + _json_tokens(call.get("function"), model)
        content = msg.get("content")
        for part in content if isinstance(content, list) else ():
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                detail = image.get("detail") if isinstance(image, dict) else None
                total += image_tokens(url if isinstance(url, str) else "", detail or "auto", (model,))
            elif kind == "input_audio":
                total += audio_tokens(str((part.get("input_audio") or {}).get("data") or ""), (model,))
    return total


def _seed(model: str, messages: Any, max_tokens: Any) -> int:
    blob = orjson.dumps([model, messages, max_tokens], option=orjson.OPT_SORT_KEYS)
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big")


class SimulatedProvider:
    kind = "simulated"
    is_simulated = True
    enforces_timeout = False  # its latency is a sleep: the dispatcher's own timeout bounds it

    def __init__(self, name: str, latency_scale: float = 1.0) -> None:
        self.name = name
        self.latency_scale = latency_scale

    def _answer(self, request: dict[str, Any], model: str) -> tuple[list[str], Usage, str]:
        messages = request.get("messages") or []
        cap = request.get("max_completion_tokens") or request.get("max_tokens")
        rng = random.Random(_seed(model, messages, cap))
        prof = _profile(model)
        target = rng.randint(prof.min_tokens, prof.max_tokens)
        finish = "stop"
        if isinstance(cap, int) and cap > 0 and target > cap:
            target, finish = cap, "length"
        pieces: list[str] = []
        for i in range(target):
            word = rng.choice(_WORDS)
            pieces.append((" " if i else "") + (word.capitalize() if i == 0 else word))
        text = "".join(pieces) + ("." if finish == "stop" else "")
        usage = Usage(
            prompt_tokens=count_message_tokens(messages, model) + _extra_prompt_tokens(request, model),
            completion_tokens=count_text_tokens(text, model),
        )
        # stream in chunks of a few words, as real providers do
        chunks: list[str] = []
        words = text.split(" ")
        step = 3
        for i in range(0, len(words), step):
            chunks.append(("" if i == 0 else " ") + " ".join(words[i : i + step]))
        return chunks, usage, finish

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.latency_scale > 0:
            await asyncio.sleep(seconds * self.latency_scale)

    async def chat(self, request: dict[str, Any], model: str, *, timeout_s: float | None = None) -> ChatResult:
        chunks, usage, finish = self._answer(request, model)
        prof = _profile(model)
        await self._sleep(prof.ttft_s + prof.per_token_s * usage.completion_tokens)
        created = int(time.time())
        body = {
            "id": "chatcmpl-sim" + hashlib.sha1(orjson.dumps([model, created, chunks[:1]])).hexdigest()[:20],
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_apex_simulated",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(chunks), "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": _usage_json(usage),
        }
        return ChatResult(
            body=orjson.dumps(body),
            usage=usage,
            served_model=model,
            finish_reason=finish,
        )

    async def chat_stream(self, request: dict[str, Any], model: str) -> AsyncGenerator[StreamChunk, None]:
        chunks, usage, finish = self._answer(request, model)
        prof = _profile(model)
        created = int(time.time())
        cid = "chatcmpl-sim" + hashlib.sha1(orjson.dumps([model, created, chunks[:1]])).hexdigest()[:20]
        per_chunk = prof.per_token_s * usage.completion_tokens / max(len(chunks), 1)

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, usage_obj: Any = None) -> StreamChunk:
            data: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_apex_simulated",
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
                "usage": usage_obj,
            }
            return StreamChunk(orjson.dumps(data), data)

        await self._sleep(prof.ttft_s)
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for text in chunks:
            await self._sleep(per_chunk)
            yield chunk({"content": text})
        yield chunk({}, finish)
        # always emitted; the gateway strips it unless the client asked for stream_options.include_usage
        yield chunk(None, usage_obj=_usage_json(usage))  # type: ignore[arg-type]

    async def embed(self, request: dict[str, Any], model: str, *, timeout_s: float | None = None) -> EmbeddingResult:
        """Deterministic unit vectors: the same input always embeds to the same point."""
        inputs = request.get("input")
        items = (
            [inputs]
            if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int))
            else inputs
        )
        dims: int = request["dimensions"] if isinstance(request.get("dimensions"), int) else EMBEDDING_DIMS
        data, tokens = [], 0
        for i, item in enumerate(items or ()):
            tokens += count_text_tokens(item, model) if isinstance(item, str) else len(item)
            rng = random.Random(_seed(model, item, dims))
            vec = [rng.gauss(0.0, 1.0) for _ in range(dims)]
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [round(v / norm, 6) for v in vec]})
        usage = Usage(prompt_tokens=tokens)
        body = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return EmbeddingResult(body=orjson.dumps(body), usage=usage, served_model=model)

    async def close(self) -> None:
        return None


def _usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _simulated(p: ProviderSettings, _transport: Transport) -> SimulatedProvider:
    return SimulatedProvider(p.name, p.latency_scale)


register_kind("simulated", _simulated)
