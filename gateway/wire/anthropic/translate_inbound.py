"""An Anthropic client calls Apex: Anthropic request → OpenAI request, OpenAI response → Anthropic message, and
``AnthropicStreamWriter`` (OpenAI chunks → Anthropic SSE events)."""

from __future__ import annotations

from typing import Any

import orjson

from contracts.ids import new_id
from gateway.wire.anthropic.common import (
    _STOP_TO_ANTHROPIC,
    _json_args,
    _text_of,
    usage_to_anthropic,
)

__all__ = [
    "AnthropicStreamWriter",
    "from_anthropic_request",
    "to_anthropic_message",
]


# -- inbound: Anthropic request → OpenAI request ---------------------------------------------------------------------


def _image_url(source: dict[str, Any]) -> str | None:
    if source.get("type") == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    if source.get("type") == "url":
        return source.get("url")
    return None


def _tool_result_text(content: Any) -> str:
    return content if isinstance(content, str) else _text_of(content)


def _openai_messages(msg: dict[str, Any]) -> list[dict[str, Any]]:
    role, content = msg.get("role"), msg.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    parts: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    tool_results: list[dict[str, Any]] = []
    for block in content or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif kind == "image":
            url = _image_url(block.get("source") or {})
            if url:
                parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "tool_use":
            fn = {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()}
            tool_calls.append({"id": block.get("id"), "type": "function", "function": fn})
        elif kind == "tool_result":
            text = _tool_result_text(block.get("content"))
            if block.get("is_error"):
                text = f"[tool error] {text}"
            tool_results.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
    out: list[dict[str, Any]] = list(tool_results)  # tool answers must directly follow the assistant's calls
    if role == "assistant":
        text = "".join(p["text"] for p in parts if p["type"] == "text")
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        out.append(message)
    elif parts:
        only_text = all(p["type"] == "text" for p in parts)
        out.append({"role": role, "content": "".join(p["text"] for p in parts) if only_text else parts})
    return out


def from_anthropic_request(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request as the canonical body; validation of the result is ``run_chat``'s."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text_of(system)})
    for msg in body.get("messages") or ():
        if isinstance(msg, dict):
            messages.extend(_openai_messages(msg))
        else:
            messages.append(msg)  # let the canonical validation name the bad entry
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p", "stream"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    if body.get("stream"):
        out["stream_options"] = {"include_usage": True}
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and t.get("name")]
    if tools:
        out["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description") or "",
                    "parameters": t.get("input_schema") or {"type": "object", "properties": {}},
                },
            }
            for t in tools
        ]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("auto", "any", "none"):
            out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
        elif kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    return out


# -- inbound: OpenAI response → Anthropic message ----------------------------------------------------------------------


def _message_id() -> str:
    return "msg_" + new_id()


def to_anthropic_message(data: dict[str, Any], model: str) -> dict[str, Any]:
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": _text_of(message["content"])})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append(
            {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": _json_args(fn.get("arguments"))}
        )
    return {
        "id": _message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _STOP_TO_ANTHROPIC.get(choice.get("finish_reason") or "", "end_turn"),
        "stop_sequence": None,
        "usage": usage_to_anthropic(data.get("usage")),
    }


class AnthropicStreamWriter:
    """OpenAI ``chat.completion.chunk`` dicts in, Anthropic ``(event name, data)`` pairs out.

    ``message_delta`` waits for ``finish()``: OpenAI sends the finish reason before the usage chunk, Anthropic
    wants both in one event."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self._block: int = -1
        self._block_kind: str | None = None
        self._tools: dict[int, int] = {}  # OpenAI tool_call index → Anthropic block index
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    def start(self) -> list[tuple[str, dict[str, Any]]]:
        self.started = True
        message: dict[str, Any] = {
            "id": _message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _close_block(self) -> list[tuple[str, dict[str, Any]]]:
        if self._block_kind is None:
            return []
        self._block_kind = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self._block})]

    def _open_block(self, kind: str, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events = self._close_block()
        self._block += 1
        self._block_kind = kind
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": self._block, "content_block": block})
        )
        return events

    def feed(self, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events = [] if self.started else self.start()
        if data.get("usage"):
            self._usage = data["usage"]
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # an Anthropic message has one choice
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self._block_kind != "text":
                    events += self._open_block("text", {"type": "text", "text": ""})
                text_delta = {"type": "text_delta", "text": delta["content"]}
                events.append(
                    ("content_block_delta", {"type": "content_block_delta", "index": self._block, "delta": text_delta})
                )
            for call in delta.get("tool_calls") or ():
                index = call.get("index", 0)
                fn = call.get("function") or {}
                if index not in self._tools:
                    block: dict[str, Any] = {
                        "type": "tool_use",
                        "id": call.get("id") or "toolu_" + new_id(),
                        "name": fn.get("name"),
                        "input": {},
                    }
                    events += self._open_block("tool_use", block)
                    self._tools[index] = self._block
                if fn.get("arguments"):
                    json_delta = {"type": "input_json_delta", "partial_json": fn["arguments"]}
                    event = {"type": "content_block_delta", "index": self._tools[index], "delta": json_delta}
                    events.append(("content_block_delta", event))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def finish(self) -> list[tuple[str, dict[str, Any]]]:
        events = ([] if self.started else self.start()) + self._close_block()
        delta = {"stop_reason": _STOP_TO_ANTHROPIC.get(self._finish or "", "end_turn"), "stop_sequence": None}
        events.append(
            ("message_delta", {"type": "message_delta", "delta": delta, "usage": usage_to_anthropic(self._usage)})
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events
