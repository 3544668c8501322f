"""What every provider adapter gives the gateway: a chat call, a streamed chat call, embeddings, and the usage."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ChatResult", "EmbeddingResult", "Provider", "StreamChunk", "Usage", "attempt_timeout"]


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Input tokens read from the provider's prompt cache (billed at the cache-read price)."""
    cache_write_tokens: int = 0
    """Input tokens written to the provider's prompt cache (Anthropic ``cache_creation_input_tokens``, billed at
    the cache-write price, 1.25x input for 5-minute writes). Carried in the canonical usage under the same name."""

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        if not isinstance(usage, dict):
            return None
        details = usage.get("prompt_tokens_details") or {}
        return cls(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
            cache_write_tokens=int(usage.get("cache_creation_input_tokens") or 0),
        )


@dataclass(slots=True)
class ChatResult:
    """A finished non-streaming call: the body to return as-is, and what the gateway needs to know of it."""

    body: bytes
    usage: Usage | None
    served_model: str
    finish_reason: str | None = None


@dataclass(slots=True)
class EmbeddingResult:
    """A finished embeddings call: the OpenAI-format ``list`` body to return as-is, and its usage."""

    body: bytes
    usage: Usage | None
    served_model: str


@dataclass(slots=True)
class StreamChunk:
    """One SSE ``data:`` payload: the raw JSON bytes (forwarded untouched) and its parsed form."""

    raw: bytes
    data: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    name: str
    kind: str
    is_simulated: bool
    enforces_timeout: bool
    """True when ``chat``/``embed`` take ``timeout_s`` and enforce it themselves (the HTTP providers: their
    client's own timer does it). Otherwise the dispatcher wraps the call in a timeout of its own."""

    async def chat(self, request: dict[str, Any], model: str, *, timeout_s: float | None = None) -> ChatResult:
        """``timeout_s``: the time this attempt may take (the provider's own timeout still caps it)."""
        ...

    def chat_stream(self, request: dict[str, Any], model: str) -> AsyncGenerator[StreamChunk, None]:
        """Yields chunks; the upstream connection is opened on the first ``__anext__``."""
        ...

    async def embed(self, request: dict[str, Any], model: str, *, timeout_s: float | None = None) -> EmbeddingResult:
        """An OpenAI-format embeddings request in, an OpenAI-format ``list`` body out."""
        ...

    async def close(self) -> None: ...


def attempt_timeout(own_s: float, limit_s: float | None) -> float:
    """The total timeout for one upstream call: the provider's own, or the attempt's limit if that is shorter.

    The limit is rounded up to the next 0.1 s (never 0, which HTTP clients read as "no timeout"): it is the time
    left to a deadline, so it differs on every call, and the client's timeout object is built once per value."""
    if limit_s is None:
        return own_s
    return min(own_s, max(math.ceil(limit_s * 10) / 10, 0.1))
