"""Token counting with tiktoken, offline: the BPE files bundled in the litellm wheel are the cache."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["count_message_tokens", "count_text_tokens"]


@functools.cache
def _encoding(name: str = "o200k_base") -> Any:
    from contracts.pricing import litellm_package_dir

    # tiktoken only looks at this variable; pointing it at the wheel's files keeps it from downloading.
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(litellm_package_dir() / "litellm_core_utils" / "tokenizers"))
    import tiktoken

    return tiktoken.get_encoding(name)


def _encoding_for(model: str | None) -> Any:
    m = (model or "").lower()
    if m.startswith(("gpt-3.5", "gpt-4-", "gpt-4 ", "text-embedding")) or m == "gpt-4":
        return _encoding("cl100k_base")
    return _encoding("o200k_base")


def count_text_tokens(text: str, model: str | None = None) -> int:
    if not text:
        return 0
    return len(_encoding_for(model).encode(text, disallowed_special=()))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return ""


def count_message_tokens(messages: Iterable[Mapping[str, Any]], model: str | None = None) -> int:
    """OpenAI's chat accounting: 3 tokens per message, the role and content, and 3 to prime the reply."""
    total = 3
    for msg in messages:
        total += 3
        total += count_text_tokens(str(msg.get("role", "")), model)
        total += count_text_tokens(_content_text(msg.get("content")), model)
        if msg.get("name"):
            total += 1 + count_text_tokens(str(msg["name"]), model)
    return total


def message_tokens_upper_bound(messages: Iterable[Mapping[str, Any]]) -> int:
    """A cheap bound that is never below ``count_message_tokens``: a BPE token covers at least one byte.

    Admission reserves with this (no tokenizer on the hot path) and counts exactly only when the bound would be
    refused, so a budget is never overshot and a call that fits is never turned away."""
    total = 3
    for msg in messages:
        total += 3 + len(str(msg.get("role", "")).encode()) + len(_content_text(msg.get("content")).encode())
        if msg.get("name"):
            total += 1 + len(str(msg["name"]).encode())
    return total
