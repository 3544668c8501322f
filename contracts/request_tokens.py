"""The prompt tokens a whole chat request (canonical OpenAI shape) can bill: every message part, the tool
definitions, earlier tool calls, response formats; media by ``contracts.media_tokens``.

Text is measured by a ``measure`` function: UTF-8 bytes for the cheap bound admission reserves first (a BPE token
covers at least one byte, whatever the provider's tokenizer), tiktoken for the exact count it falls back to.
A plain-text request takes the same few steps it took when only text was counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from contracts.media_tokens import audio_tokens, image_tokens, max_input_tokens
from contracts.tokens import count_text_tokens

__all__ = ["TOOLS_OVERHEAD_TOKENS", "completion_tokens_extra", "prompt_tokens_bound"]

TOOLS_OVERHEAD_TOKENS = 600
"""Added once when tools are offered: Anthropic's tool-use system prompt (346 tokens on current models, 530 on
Claude 3 Opus) and OpenAI's function-namespace wrapper are billed on top of the definitions themselves."""
_FORMAT_OVERHEAD_TOKENS = 50
"""The instructions a provider wraps around a ``response_format`` schema."""
_BILLED_BODY_KEYS = frozenset(("tools", "functions", "response_format", "tool_choice", "function_call"))
_MESSAGE_TEXT_KEYS = frozenset(("role", "content", "name"))

Measure = Callable[[str], int]


def _bytes(text: str) -> int:
    return len(text.encode())


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def _part_tokens(part: Any, measure: Measure, models: Sequence[str], texts: list[str]) -> int:
    """Tokens of one non-text content part; a text part's text goes to ``texts`` (measured joined, as OpenAI does)."""
    if not isinstance(part, Mapping):
        return measure(_json(part))
    kind = part.get("type")
    if kind == "text" and isinstance(part.get("text"), str):
        texts.append(part["text"])
        return 0
    if kind == "image_url":
        image = part.get("image_url")
        url = image if isinstance(image, str) else image.get("url") if isinstance(image, Mapping) else None
        detail = image.get("detail") if isinstance(image, Mapping) else None
        return image_tokens(url if isinstance(url, str) else "", detail if isinstance(detail, str) else "auto", models)
    if kind == "input_audio":
        audio = part.get("input_audio")
        data = audio.get("data") if isinstance(audio, Mapping) else None
        return audio_tokens(data if isinstance(data, str) else "", models)
    if kind == "file":
        return max_input_tokens(models)  # a PDF's text and page images: no cheap bound short of the context window
    return measure(_json(part))  # refusal parts and anything new: every byte of it, as text


def _content_tokens(content: Any, measure: Measure, models: Sequence[str]) -> int:
    if not isinstance(content, list):
        return measure(_json(content))
    texts: list[str] = []
    total = sum(_part_tokens(part, measure, models, texts) for part in content)
    return total + measure("\n".join(texts))


def _message_tokens(msg: Any, measure: Measure, models: Sequence[str]) -> int:
    if not isinstance(msg, Mapping):
        return 3 + measure(_json(msg))
    total = 3 + measure(str(msg.get("role", "")))
    content = msg.get("content")
    if isinstance(content, str):
        total += measure(content)
    elif content is not None:
        total += _content_tokens(content, measure, models)
    if msg.get("name"):
        total += 1 + measure(str(msg["name"]))
    if not _MESSAGE_TEXT_KEYS.issuperset(msg):  # tool_calls, tool_call_id, function_call, refusal, audio...
        for key, value in msg.items():
            if key in _MESSAGE_TEXT_KEYS or value is None:
                continue
            # an earlier audio answer referenced by id is billed as audio of unknown length
            total += max_input_tokens(models) if key == "audio" else measure(key) + measure(_json(value))
    return total


def _has_billed_keys(body: Mapping[str, Any]) -> bool:
    # spelled out: a generator over _BILLED_BODY_KEYS costs more than the whole plain-text bound
    return (
        "tools" in body
        or "functions" in body
        or "response_format" in body
        or "tool_choice" in body
        or "function_call" in body
    )


def _plain_text_bound(messages: Iterable[Any]) -> int | None:
    """The hot path: string contents and names only (``message_tokens_upper_bound``'s arithmetic); else None."""
    total = 3
    for msg in messages:
        if type(msg) is not dict:
            return None
        content = msg.get("content")
        size = len(msg)
        if not isinstance(content, str) or (size > 2 and (size > 3 or "name" not in msg)):
            return None
        total += 3 + len(str(msg.get("role", "")).encode()) + len(content.encode())
        if size == 3 and msg["name"]:
            total += 1 + len(str(msg["name"]).encode())
    return total


def prompt_tokens_bound(
    messages: Iterable[Any],
    body: Mapping[str, Any],
    models: Sequence[str],
    *,
    exact_model: str | None = None,
) -> int:
    """Prompt tokens the request can bill on any of ``models`` (the route's). Text by UTF-8 bytes, or counted with
    ``exact_model``'s tokenizer when given; for plain-text messages the exact count is ``count_message_tokens``."""
    if exact_model is None and not _has_billed_keys(body):
        plain = _plain_text_bound(messages)
        if plain is not None:
            return plain

    def counted(text: str) -> int:
        return count_text_tokens(text, exact_model)

    measure: Measure = _bytes if exact_model is None else counted
    total = 3 + sum(_message_tokens(msg, measure, models) for msg in messages)
    for key in sorted(_BILLED_BODY_KEYS & body.keys()):
        value = body[key]
        if value is None or isinstance(value, str):  # "auto", "none": nothing billed
            continue
        total += measure(_json(value))
        if key in ("tools", "functions") and value:
            total += TOOLS_OVERHEAD_TOKENS
        elif key == "response_format":
            total += _FORMAT_OVERHEAD_TOKENS
    return total


def completion_tokens_extra(body: Mapping[str, Any]) -> int:
    """Completion tokens billed beyond the answer: a predicted output's rejected tokens are billed as output."""
    prediction = body.get("prediction")
    if prediction is None:
        return 0
    return len(_json(prediction).encode())
