"""OpenAI chat-completions ⇄ Anthropic Messages, both ways, as pure functions and small stream state machines.

Upstream direction (Apex calls Anthropic): ``to_anthropic_request``, ``from_anthropic_response``,
``AnthropicStreamReader`` (Anthropic SSE events → OpenAI chunks).
Inbound direction (an Anthropic client calls Apex): ``from_anthropic_request``, ``to_anthropic_message``,
``AnthropicStreamWriter`` (OpenAI chunks → Anthropic SSE events).
Anthropic's ``input_tokens`` excludes cache reads and writes; OpenAI's ``prompt_tokens`` includes them, so the
two are converted explicitly (``usage_from_anthropic``, ``usage_to_anthropic``).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway.ids import new_id

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "AnthropicStreamReader",
    "AnthropicStreamWriter",
    "error_type_for_status",
    "from_anthropic_request",
    "from_anthropic_response",
    "to_anthropic_message",
    "to_anthropic_request",
    "usage_from_anthropic",
    "usage_to_anthropic",
]

DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; OpenAI clients usually omit it."""

_STOP_TO_OPENAI = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STOP_TO_ANTHROPIC = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for_status(status: int) -> str:
    return _ERROR_TYPES.get(status, "invalid_request_error" if 400 <= status < 500 else "api_error")


# -- usage ---------------------------------------------------------------------------------------------------


def usage_from_anthropic(u: dict[str, Any]) -> dict[str, Any]:
    cache_read = int(u.get("cache_read_input_tokens") or 0)
    cache_write = int(u.get("cache_creation_input_tokens") or 0)
    prompt = int(u.get("input_tokens") or 0) + cache_read + cache_write
    completion = int(u.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }


def usage_to_anthropic(u: dict[str, Any] | None) -> dict[str, Any]:
    u = u or {}
    details = u.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return {
        "input_tokens": max(int(u.get("prompt_tokens") or 0) - cached, 0),
        "output_tokens": int(u.get("completion_tokens") or 0),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


# -- content ---------------------------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url[5:].partition(";base64,")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks_from_openai(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content or ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text") or ""})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                blocks.append(_image_block(url))
    return blocks


def _json_args(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


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
