"""Apex calls Anthropic: OpenAI request → Anthropic request, Anthropic response → OpenAI response, and
``AnthropicStreamReader`` (Anthropic SSE events → OpenAI chunks)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from contracts.ids import new_id
from gateway.wire.anthropic.common import (
    _STOP_TO_OPENAI,
    DEFAULT_MAX_TOKENS,
    _blocks_from_openai,
    _json_args,
    _text_of,
    usage_from_anthropic,
)

__all__ = [
    "AnthropicStreamReader",
    "from_anthropic_response",
    "to_anthropic_request",
]


# -- upstream: OpenAI request → Anthropic request ------------------------------------------------------------------


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Anthropic wants alternating turns: consecutive same-role messages are merged."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": list(blocks)})


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None = None
    if choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    if parallel is False:
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return out


def to_anthropic_request(body: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for msg in body.get("messages") or ():
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            system.append(_text_of(content))
        elif role == "user":
            _append(messages, "user", _blocks_from_openai(content))
        elif role == "assistant":
            blocks = _blocks_from_openai(content)
            for call in msg.get("tool_calls") or ():
                fn = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": fn.get("name"),
                        "input": _json_args(fn.get("arguments")),
                    }
                )
            _append(messages, "assistant", blocks)
        elif role in ("tool", "function"):
            result = {"type": "tool_result", "tool_use_id": msg.get("tool_call_id"), "content": _text_of(content)}
            _append(messages, "user", [result])
    out: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system:
        out["system"] = "\n\n".join(s for s in system if s)
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = [t.get("function") or {} for t in body.get("tools") or () if isinstance(t, dict)]
    if tools:
        out["tools"] = [
            {
                "name": fn.get("name"),
                "description": fn.get("description") or "",
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
            for fn in tools
        ]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice:
            out["tool_choice"] = choice
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if stream:
        out["stream"] = True
    return out


# -- upstream: Anthropic response → OpenAI response ----------------------------------------------------------------


def from_anthropic_response(data: dict[str, Any], model: str) -> dict[str, Any]:
    text: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in data.get("content") or ():
        if block.get("type") == "text":
            text.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": data.get("id") or "msg_" + new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _STOP_TO_OPENAI.get(data.get("stop_reason") or "", "stop"),
                "logprobs": None,
            }
        ],
        "usage": usage_from_anthropic(data.get("usage") or {}),
    }


class AnthropicStreamReader:
    """Anthropic stream events in, OpenAI ``chat.completion.chunk`` dicts out (the last one carries usage)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = "chatcmpl-" + new_id()
        self.created = int(time.time())
        self.usage: dict[str, Any] = {}
        self.done = False
        self._tool_index: dict[int, int] = {}

    def _chunk(self, delta: dict[str, Any] | None, finish: str | None = None, usage: Any = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            "usage": usage,
        }

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.model = message.get("model") or self.model
            self.usage.update({k: v for k, v in (message.get("usage") or {}).items() if v is not None})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tool_index[event.get("index", 0)] = len(self._tool_index)
                call = {"index": index, "id": block.get("id"), "type": "function"}
                call["function"] = {"name": block.get("name"), "arguments": ""}
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text") or ""})]
            if delta.get("type") == "input_json_delta" and event.get("index", 0) in self._tool_index:
                call = {
                    "index": self._tool_index[event.get("index", 0)],
                    "function": {"arguments": delta.get("partial_json") or ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            return []  # thinking, signature and citation deltas have no OpenAI counterpart
        if kind == "message_delta":
            # usage on message_delta is cumulative: it overwrites what message_start said
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            reason = (event.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, _STOP_TO_OPENAI.get(reason or "", "stop"))] if reason else []
        if kind == "message_stop":
            self.done = True
            return [self._chunk(None, usage=usage_from_anthropic(self.usage))]
        return []  # ping, content_block_stop and future event types
