"""OpenAI chat-completions ⇄ Gemini ``generateContent`` (AI Studio and Vertex AI share the body format).

``to_gemini_request`` builds the body, ``from_gemini_response`` the OpenAI answer, ``GeminiStreamReader`` turns
``streamGenerateContent?alt=sse`` responses into OpenAI chunks. Gemini's ``promptTokenCount`` already includes
``cachedContentTokenCount``, so it maps to ``prompt_tokens`` unchanged; thinking tokens are billed as output.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from contracts.ids import new_id

__all__ = [
    "GeminiStreamReader",
    "from_gemini_embeddings",
    "from_gemini_response",
    "to_gemini_embeddings",
    "to_gemini_request",
    "usage_from_gemini",
]

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
# JSON-schema keywords Gemini's OpenAPI-subset schema rejects
_UNSUPPORTED_SCHEMA_KEYS = frozenset({"$schema", "additionalProperties", "strict", "$defs", "definitions"})


def usage_from_gemini(meta: dict[str, Any]) -> dict[str, Any]:
    prompt = int(meta.get("promptTokenCount") or 0)
    completion = int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(meta.get("cachedContentTokenCount") or 0)},
    }


def _schema(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _schema(v) for k, v in node.items() if k not in _UNSUPPORTED_SCHEMA_KEYS}
    if isinstance(node, list):
        return [_schema(v) for v in node]
    return node


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content or ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            parts.append({"text": part.get("text") or ""})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url.startswith("data:") and ";base64," in url:
                mime, _, data = url[5:].partition(";base64,")
                parts.append({"inlineData": {"mimeType": mime, "data": data}})
            elif isinstance(url, str):
                parts.append({"fileData": {"fileUri": url}})
    return parts


def _args(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        return orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"_raw": arguments}


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": list(parts)})


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if choice == "auto":
        return {"functionCallingConfig": {"mode": "AUTO"}}
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}}
    return None


def to_gemini_request(body: dict[str, Any]) -> dict[str, Any]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # a functionResponse names the function, an OpenAI tool message only the call id
    for msg in body.get("messages") or ():
        role, content = msg.get("role"), msg.get("content")
        if role in ("system", "developer"):
            system.extend(p["text"] for p in _parts(content) if "text" in p)
        elif role == "user":
            _append(contents, "user", _parts(content))
        elif role == "assistant":
            parts = _parts(content)
            for call in msg.get("tool_calls") or ():
                fn = call.get("function") or {}
                call_names[call.get("id") or ""] = fn.get("name") or ""
                parts.append({"functionCall": {"name": fn.get("name"), "args": _args(fn.get("arguments"))}})
            _append(contents, "model", parts)
        elif role in ("tool", "function"):
            name = msg.get("name") or call_names.get(msg.get("tool_call_id") or "", "")
            text = content if isinstance(content, str) else "".join(p.get("text", "") for p in _parts(content))
            _append(contents, "user", [{"functionResponse": {"name": name, "response": {"content": text}}}])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    config: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("n", "candidateCount"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            config["responseSchema"] = _schema(schema)
    if config:
        out["generationConfig"] = config
    functions = [t.get("function") or {} for t in body.get("tools") or () if isinstance(t, dict)]
    if functions:
        declarations = []
        for fn in functions:
            decl: dict[str, Any] = {"name": fn.get("name"), "description": fn.get("description") or ""}
            if fn.get("parameters"):
                decl["parameters"] = _schema(fn["parameters"])
            declarations.append(decl)
        out["tools"] = [{"functionDeclarations": declarations}]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config:
            out["toolConfig"] = tool_config
    return out


def _message(candidate: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if part.get("thought"):
            continue  # thought summaries are not part of the answer
        if "text" in part:
            text.append(part["text"] or "")
        elif "functionCall" in part:
            fc = part["functionCall"] or {}
            arguments = orjson.dumps(fc.get("args") or {}).decode()
            calls.append(
                {
                    "id": "call_" + new_id()[:24],
                    "type": "function",
                    "function": {"name": fc.get("name"), "arguments": arguments},
                }
            )
    return "".join(text), calls


def _finish(candidate: dict[str, Any], has_calls: bool) -> str | None:
    reason = candidate.get("finishReason")
    if not reason or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    return "tool_calls" if has_calls else _FINISH.get(reason, "stop")


def from_gemini_response(data: dict[str, Any], model: str) -> dict[str, Any]:
    choices = []
    for i, candidate in enumerate(data.get("candidates") or ()):
        text, calls = _message(candidate)
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": candidate.get("index", i),
                "message": message,
                "finish_reason": _finish(candidate, bool(calls)) or "stop",
                "logprobs": None,
            }
        )
    if not choices:  # the prompt itself was blocked
        choices.append({"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "content_filter"})
    return {
        "id": "chatcmpl-" + (data.get("responseId") or new_id()),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("modelVersion") or model,
        "choices": choices,
        "usage": usage_from_gemini(data.get("usageMetadata") or {}),
    }


class GeminiStreamReader:
    """Each ``streamGenerateContent`` SSE payload in, OpenAI chunk dicts out; ``finish()`` gives the usage chunk."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = "chatcmpl-" + new_id()
        self.created = int(time.time())
        self.usage: dict[str, Any] = {}
        self.finished = False
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}  # candidate index → tool calls so far

    def _chunk(self, choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": usage,
        }

    def feed(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        if data.get("usageMetadata"):
            self.usage = data["usageMetadata"]  # cumulative: the last one counts
        choices = []
        for i, candidate in enumerate(data.get("candidates") or ()):
            index = candidate.get("index", i)
            text, calls = _message(candidate)
            delta: dict[str, Any] = {}
            if index not in self._started:
                self._started.add(index)
                delta["role"] = "assistant"
            if text or "role" in delta:
                delta["content"] = text
            if calls:
                first = self._calls.get(index, 0)
                delta["tool_calls"] = [{"index": first + k, **call} for k, call in enumerate(calls)]
                self._calls[index] = first + len(calls)
            finish = _finish(candidate, bool(self._calls.get(index)))
            if finish:
                self.finished = True
            if delta or finish:
                choices.append({"index": index, "delta": delta, "finish_reason": finish, "logprobs": None})
        return [self._chunk(choices)] if choices else []

    def finish(self) -> dict[str, Any]:
        return self._chunk([], usage=usage_from_gemini(self.usage))


def _texts(inputs: Any) -> list[str]:
    return [inputs] if isinstance(inputs, str) else list(inputs)


def to_gemini_embeddings(request: dict[str, Any], model: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if isinstance(request.get("dimensions"), int):
        extra["outputDimensionality"] = request["dimensions"]
    return {
        "requests": [
            {"model": f"models/{model}", "content": {"parts": [{"text": text}]}, **extra}
            for text in _texts(request.get("input"))
        ]
    }


def from_gemini_embeddings(data: dict[str, Any], model: str, prompt_tokens: int) -> dict[str, Any]:
    """Gemini's batch answer does not count tokens; the caller supplies its own count."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": e.get("values") or []}
            for i, e in enumerate(data.get("embeddings") or ())
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
