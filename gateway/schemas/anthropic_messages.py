"""The Anthropic Messages request schema, checked before the body is translated to the canonical shape.

Errors name the field the way Anthropic does (``messages.0.content.1.source``). Block types are closed, like the
OpenAI schema's content parts: a block the translation does not know would reach no budget reservation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.schemas._core import (
    JSON_INT_MAX,
    Path,
    Violation,
    anthropic_error,
    fail,
    kind_of,
    need_bool,
    need_enum,
    need_int,
    need_list,
    need_number,
    need_object,
    need_str,
    need_str_list,
    optional_str,
    short,
)

__all__ = ["validate_messages"]

_ROLES = frozenset({"user", "assistant"})
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_IMAGE_SOURCES = frozenset({"base64", "url", "file"})
_DOCUMENT_SOURCES = frozenset({"base64", "text", "url", "content", "file"})
_TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})
_THINKING = frozenset({"enabled", "disabled"})


# -- content blocks ------------------------------------------------------------------------------------------------


def _text(block: dict[str, Any], path: Path) -> None:
    need_str(block.get("text"), (*path, "text"))


def _image(block: dict[str, Any], path: Path) -> None:
    at = (*path, "source")
    source = need_object(block.get("source"), at)
    kind = need_enum(source.get("type"), (*at, "type"), _IMAGE_SOURCES)
    if kind == "base64":
        need_enum(source.get("media_type"), (*at, "media_type"), _IMAGE_TYPES)
        need_str(source.get("data"), (*at, "data"), non_empty=True)
    elif kind == "url":
        need_str(source.get("url"), (*at, "url"), non_empty=True)
    else:
        need_str(source.get("file_id"), (*at, "file_id"), non_empty=True)


def _document(block: dict[str, Any], path: Path) -> None:
    at = (*path, "source")
    source = need_object(block.get("source"), at)
    kind = need_enum(source.get("type"), (*at, "type"), _DOCUMENT_SOURCES)
    if kind in ("base64", "text"):
        need_str(source.get("media_type"), (*at, "media_type"), non_empty=True)
        need_str(source.get("data"), (*at, "data"))
    elif kind == "url":
        need_str(source.get("url"), (*at, "url"), non_empty=True)
    elif kind == "file":
        need_str(source.get("file_id"), (*at, "file_id"), non_empty=True)
    else:
        content = source.get("content")
        if not isinstance(content, str):
            _blocks(need_list(content, (*at, "content")), (*at, "content"), _RESULT_BLOCKS)
    for name in ("title", "context"):
        optional_str(block, name, path)


def _tool_use(block: dict[str, Any], path: Path) -> None:
    need_str(block.get("id"), (*path, "id"), non_empty=True)
    need_str(block.get("name"), (*path, "name"), non_empty=True)
    need_object(block.get("input"), (*path, "input"))


def _tool_result(block: dict[str, Any], path: Path) -> None:
    need_str(block.get("tool_use_id"), (*path, "tool_use_id"), non_empty=True)
    content = block.get("content")
    if content is not None and not isinstance(content, str):
        _blocks(need_list(content, (*path, "content")), (*path, "content"), _RESULT_BLOCKS)
    if block.get("is_error") is not None:
        need_bool(block["is_error"], (*path, "is_error"))


def _thinking(block: dict[str, Any], path: Path) -> None:
    need_str(block.get("thinking"), (*path, "thinking"))
    need_str(block.get("signature"), (*path, "signature"))


def _redacted_thinking(block: dict[str, Any], path: Path) -> None:
    need_str(block.get("data"), (*path, "data"))


BlockCheck = Callable[[dict[str, Any], Path], None]
_RESULT_BLOCKS: dict[str, BlockCheck] = {"text": _text, "image": _image, "document": _document}
_MESSAGE_BLOCKS: dict[str, BlockCheck] = {
    "text": _text,
    "image": _image,
    "document": _document,
    "tool_use": _tool_use,
    "tool_result": _tool_result,
    "thinking": _thinking,
    "redacted_thinking": _redacted_thinking,
}
_SYSTEM_BLOCKS: dict[str, BlockCheck] = {"text": _text}


def _blocks(blocks: list[Any], path: Path, allowed: dict[str, BlockCheck]) -> None:
    for j, block in enumerate(blocks):
        at = (*path, j)
        if not isinstance(block, dict):
            fail(at, f"Input should be a content block object, got {kind_of(block)}")
        kind = block.get("type")
        check = allowed.get(kind) if isinstance(kind, str) else None
        if check is None:
            fail((*at, "type"), f"Input should be one of {sorted(allowed)}, got {short(kind)}", "invalid_value")
        check(block, at)


# -- top-level fields ----------------------------------------------------------------------------------------------


def _messages(value: Any, path: Path) -> None:
    for i, msg in enumerate(need_list(value, path, non_empty=True)):
        at = (*path, i)
        if not isinstance(msg, dict):
            fail(at, f"Input should be a message object, got {kind_of(msg)}")
        need_enum(msg.get("role"), (*at, "role"), _ROLES)
        content = msg.get("content")
        if content is None:
            fail((*at, "content"), "Field required", "missing_required_parameter")
        if not isinstance(content, str):
            if not isinstance(content, list):
                fail((*at, "content"), f"Input should be a string or a list of content blocks, got {kind_of(content)}")
            _blocks(content, (*at, "content"), _MESSAGE_BLOCKS)


def _system(value: Any, path: Path) -> None:
    if not isinstance(value, str):
        if not isinstance(value, list):
            fail(path, f"Input should be a string or a list of text blocks, got {kind_of(value)}")
        _blocks(value, path, _SYSTEM_BLOCKS)


def _tools(value: Any, path: Path) -> None:
    for i, tool in enumerate(need_list(value, path)):
        at = (*path, i)
        tool = need_object(tool, at)
        need_str(tool.get("name"), (*at, "name"), non_empty=True)
        if tool.get("type") in (None, "custom"):  # a client tool; server tools (web_search_…) carry their own shape
            need_object(tool.get("input_schema"), (*at, "input_schema"))
            optional_str(tool, "description", at)
        else:
            need_str(tool["type"], (*at, "type"))


def _tool_choice(value: Any, path: Path) -> None:
    choice = need_object(value, path)
    if need_enum(choice.get("type"), (*path, "type"), _TOOL_CHOICES) == "tool":
        need_str(choice.get("name"), (*path, "name"), non_empty=True)
    if choice.get("disable_parallel_tool_use") is not None:
        need_bool(choice["disable_parallel_tool_use"], (*path, "disable_parallel_tool_use"))


def _metadata(value: Any, path: Path) -> None:
    optional_str(need_object(value, path), "user_id", path)


def _thinking_config(value: Any, path: Path) -> None:
    config = need_object(value, path)
    if need_enum(config.get("type"), (*path, "type"), _THINKING) == "enabled":
        need_int(config.get("budget_tokens"), (*path, "budget_tokens"), 1, JSON_INT_MAX)


def _model(value: Any, path: Path) -> None:
    if not isinstance(value, str) or not value.strip():
        fail(path, f"Input should be a non-empty string, got {kind_of(value)}")


_FIELDS: dict[str, Callable[[Any, Path], Any]] = {
    "model": _model,
    "max_tokens": lambda v, p: need_int(v, p, 1),
    "messages": _messages,
    "system": _system,
    "temperature": lambda v, p: need_number(v, p, 0, 1),
    "top_p": lambda v, p: need_number(v, p, 0, 1),
    "top_k": lambda v, p: need_int(v, p, 0),
    "stop_sequences": need_str_list,
    "stream": need_bool,
    "metadata": _metadata,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "thinking": _thinking_config,
    "service_tier": need_str,
}


def validate_messages(body: dict[str, Any]) -> None:
    """Check an Anthropic Messages body against Anthropic's schema before it is translated.

    Raises ``InvalidRequestError`` whose message leads with the offending field's path."""
    try:
        for name, value in body.items():
            check = _FIELDS.get(name)
            if check is not None and value is not None:
                check(value, (name,))
        for name in ("model", "max_tokens", "messages"):
            if body.get(name) is None:
                fail((name,), "Field required", "missing_required_parameter")
    except Violation as v:
        raise anthropic_error(v) from None
