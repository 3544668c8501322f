"""Usage when the provider did not report it: a tokenizer estimate of what was sent and what came back."""

from __future__ import annotations

from typing import Any

import orjson

from contracts.tokens import count_message_tokens, count_text_tokens
from gateway.providers.base import Usage

__all__ = ["completion_text", "delta_text", "estimate_usage"]


def estimate_usage(messages: Any, model: str, completion_text: str) -> Usage:
    return Usage(
        prompt_tokens=count_message_tokens(messages or [], model),
        completion_tokens=count_text_tokens(completion_text, model),
    )


def completion_text(raw: bytes) -> str:
    """The text of a chat completion's choices (for an estimate; "" if the body is not one)."""
    try:
        choices = orjson.loads(raw).get("choices") or []
        return "".join((c.get("message") or {}).get("content") or "" for c in choices if isinstance(c, dict))
    except Exception:
        return ""


def delta_text(data: dict[str, Any]) -> str:
    """The text a stream chunk adds."""
    out = []
    for choice in data.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            out.append(delta["content"])
    return "".join(out)
