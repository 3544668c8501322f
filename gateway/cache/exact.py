"""Exact response cache: the same request from the same tenant gets the stored answer.

The key is a SHA-256 over the tenant and the *whole* canonical request body minus fields that cannot change the
answer (``stream``, ``stream_options``, ``user``, ``metadata``, ``store``). Listing what to drop rather than what
to keep means every sampling parameter — including ones a provider adds next year — is part of the key, so two
requests that differ in ``temperature``, ``tools``, ``seed`` or ``response_format`` never share an entry.

Entries are canonical ``chat.completion`` bodies (a streamed answer is assembled into one), kept in memory with a
TTL and bounded by entry count and bytes (least recently used goes first). A hit is replayed as a stream when the
client streams. Opt-in: per key (``ApiKey.cache_enabled``) or per request (``x-apex-cache: on``; ``off`` wins).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.providers.base import StreamChunk, Usage

__all__ = ["NOT_IN_KEY", "CachedAnswer", "ExactCache", "assemble_stream", "replay_stream"]

NOT_IN_KEY = frozenset({"stream", "stream_options", "user", "metadata", "store"})
"""Request fields that cannot change the answer; every other field keys a cache entry (the semantic cache too)."""


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    body: bytes
    """A canonical ``chat.completion`` body."""
    usage: Usage | None
    model: str
    finish_reason: str | None
    stored_at: float
    simulated: bool = False
    """The answer came from a simulated provider: replays of it are simulated traffic too."""


class ExactCache:
    def __init__(self, *, ttl_s: float = 3600.0, max_entries: int = 10_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @staticmethod
    def key_for(tenant: str, body: dict[str, Any]) -> str:
        significant = {k: v for k, v in body.items() if k not in NOT_IN_KEY}
        blob = orjson.dumps([tenant, significant], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).hexdigest()

    def get(self, key: str, now: float | None = None) -> CachedAnswer | None:
        entry = self._entries.get(key)
        now = time.time() if now is None else now
        if entry is None:
            self.misses += 1
            return None
        if now - entry.stored_at > self.ttl_s:
            self._drop(key)
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: str, answer: CachedAnswer) -> None:
        size = len(answer.body)
        if size > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = answer
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self.evictions += 1

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= len(entry.body)

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._entries),
            "bytes": self._bytes,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
        }


def assemble_stream(chunks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Fold OpenAI stream chunks into the ``chat.completion`` they describe (text and tool calls)."""
    if not chunks:
        return None
    first = chunks[0]
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for data in chunks:
        if data.get("usage"):
            usage = data["usage"]
        for ch in data.get("choices") or ():
            idx = ch.get("index", 0)
            slot = choices.setdefault(
                idx, {"index": idx, "message": {"role": "assistant", "content": None}, "finish_reason": None}
            )
            delta = ch.get("delta") or {}
            if isinstance(delta.get("content"), str):
                slot["message"]["content"] = (slot["message"]["content"] or "") + delta["content"]
            for tc in delta.get("tool_calls") or ():
                calls = slot["message"].setdefault("tool_calls", [])
                i = tc.get("index", 0)
                while len(calls) <= i:
                    calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                if tc.get("id"):
                    calls[i]["id"] = tc["id"]
                fn = tc.get("function") or {}
                calls[i]["function"]["name"] += fn.get("name") or ""
                calls[i]["function"]["arguments"] += fn.get("arguments") or ""
            if ch.get("finish_reason"):
                slot["finish_reason"] = ch["finish_reason"]
    body: dict[str, Any] = {
        "id": first.get("id"),
        "object": "chat.completion",
        "created": first.get("created"),
        "model": first.get("model"),
        "choices": [choices[i] for i in sorted(choices)],
    }
    if usage:
        body["usage"] = usage
    return body


def replay_stream(answer: CachedAnswer, *, include_usage: bool = True, piece_chars: int = 64) -> list[StreamChunk]:
    """The stream a client would have seen for ``answer``: role, content pieces, tool calls, finish, usage."""
    body = orjson.loads(answer.body)
    base = {
        "id": body.get("id"),
        "object": "chat.completion.chunk",
        "created": body.get("created"),
        "model": body.get("model"),
    }

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> StreamChunk:
        data = {**base, "choices": choices, **extra}
        return StreamChunk(orjson.dumps(data), data)

    out: list[StreamChunk] = []
    for ch in body.get("choices") or ():
        idx = ch.get("index", 0)
        msg = ch.get("message") or {}
        out.append(chunk([{"index": idx, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]))
        text = msg.get("content") or ""
        for i in range(0, len(text), piece_chars):
            out.append(chunk([{"index": idx, "delta": {"content": text[i : i + piece_chars]}, "finish_reason": None}]))
        for n, tc in enumerate(msg.get("tool_calls") or ()):
            delta = {"tool_calls": [{"index": n, **tc}]}
            out.append(chunk([{"index": idx, "delta": delta, "finish_reason": None}]))
        out.append(chunk([{"index": idx, "delta": {}, "finish_reason": ch.get("finish_reason") or "stop"}]))
    if include_usage and body.get("usage"):
        out.append(chunk([], usage=body["usage"]))
    return out
