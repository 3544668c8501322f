"""Which calls the semantic cache may answer, and the scope an entry is matched within."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.cache.exact import NOT_IN_KEY
from gateway.levers.base import text_of

__all__ = ["semantic_key"]

# The semantic cache compares messages itself; every other field that can change the answer scopes its entries
# (the exact cache's rule: list what to drop, so a parameter added next year is in the scope too).
_NOT_IN_SCOPE = NOT_IN_KEY | {"messages", "model"}


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def semantic_key(
    tenant: str, model: str, body: Mapping[str, Any], messages: list[Any], *, multi_turn: bool, include_sampled: bool
) -> tuple[str, str] | str:
    """``(scope, text)`` for a call the semantic cache may answer, or why it may not (the bypass reason).

    The scope holds everything besides the last user turn that changes the answer — tenant, model, system
    prompt, tools, sampling parameters and (multi-turn only) the earlier turns — so entries only ever match
    within it; the text is the last user turn, which is what gets embedded and compared."""
    temperature = body.get("temperature")
    if not include_sampled and isinstance(temperature, int | float) and temperature > 0:
        return "sampled: temperature > 0 (set cache.semantic.include_sampled to allow)"
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "user":
        return "last message is not a user turn"
    text = text_of(last.get("content"))
    if not text or not text.strip():
        return "last user turn has no text"
    system = [m for m in messages[:-1] if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    earlier = [m for m in messages[:-1] if isinstance(m, dict) and m.get("role") not in ("system", "developer")]
    if earlier and not multi_turn:
        return "multi-turn conversation (set cache.semantic.multi_turn to allow)"
    scope = {
        "tenant": tenant,
        "model": model,
        "system": system,
        "earlier": earlier,
        "params": {k: v for k, v in body.items() if k not in _NOT_IN_SCOPE},
    }
    return _digest(scope), text
