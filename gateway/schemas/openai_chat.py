"""The OpenAI chat-completions request schema (the canonical body), checked by hand for speed.

Known fields must have their documented type and range; unknown fields pass (OpenAI adds fields often and the
provider is the judge of those). Content part types are closed: a part the gateway does not know is a part no
budget reservation can count, so it is refused rather than forwarded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.schemas._core import (
    INT64_MAX,
    Path,
    check_openai_body,
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

__all__ = ["validate_chat"]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_DETAIL = frozenset({"auto", "low", "high"})
_TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})
_FUNCTION_CALL_MODES = frozenset({"none", "auto"})
_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})


# -- content parts ---------------------------------------------------------------------------------------------------


def _text_part(part: dict[str, Any], path: Path) -> None:
    need_str(part.get("text"), (*path, "text"))


def _refusal_part(part: dict[str, Any], path: Path) -> None:
    need_str(part.get("refusal"), (*path, "refusal"))


def _image_part(part: dict[str, Any], path: Path) -> None:
    image = need_object(part.get("image_url"), (*path, "image_url"))
    need_str(image.get("url"), (*path, "image_url", "url"), non_empty=True)
    detail = image.get("detail")
    if detail is not None:
        need_enum(detail, (*path, "image_url", "detail"), _DETAIL)


def _audio_part(part: dict[str, Any], path: Path) -> None:
    audio = need_object(part.get("input_audio"), (*path, "input_audio"))
    need_str(audio.get("data"), (*path, "input_audio", "data"))
    need_str(audio.get("format"), (*path, "input_audio", "format"), non_empty=True)


def _file_part(part: dict[str, Any], path: Path) -> None:
    file = need_object(part.get("file"), (*path, "file"))
    for name in ("file_data", "file_id", "filename"):
        optional_str(file, name, (*path, "file"))


PartCheck = Callable[[dict[str, Any], Path], None]
_TEXT_ONLY: dict[str, PartCheck] = {"text": _text_part}
_USER_PARTS: dict[str, PartCheck] = {
    "text": _text_part,
    "image_url": _image_part,
    "input_audio": _audio_part,
    "file": _file_part,
}
_ASSISTANT_PARTS: dict[str, PartCheck] = {"text": _text_part, "refusal": _refusal_part}


def _content(msg: dict[str, Any], path: Path, parts: dict[str, PartCheck], *, required: bool) -> None:
    content = msg.get("content")
    if isinstance(content, str):
        return
    if content is None:
        if required:
            fail((*path, "content"), "this message needs 'content'", "missing_required_parameter")
        return
    if not isinstance(content, list):
        fail((*path, "content"), f"expected a string or an array of content parts, got {kind_of(content)}")
    for j, part in enumerate(content):
        at = (*path, "content", j)
        if not isinstance(part, dict):
            fail(at, f"expected a content part object, got {kind_of(part)}")
        kind = part.get("type")
        check = parts.get(kind) if isinstance(kind, str) else None
        if check is None:
            need_str(kind, (*at, "type"))
            fail((*at, "type"), f"expected one of {sorted(parts)}, got {short(kind)}", "invalid_value")
        check(part, at)


# -- messages, by role ---------------------------------------------------------------------------------------------


def _system(msg: dict[str, Any], path: Path) -> None:
    _content(msg, path, _TEXT_ONLY, required=True)
    optional_str(msg, "name", path)


def _user(msg: dict[str, Any], path: Path) -> None:
    _content(msg, path, _USER_PARTS, required=True)
    optional_str(msg, "name", path)


def _assistant(msg: dict[str, Any], path: Path) -> None:
    _content(msg, path, _ASSISTANT_PARTS, required=False)
    optional_str(msg, "name", path)
    optional_str(msg, "refusal", path)
    calls = msg.get("tool_calls")
    if calls is not None:
        for k, call in enumerate(need_list(calls, (*path, "tool_calls"))):
            at = (*path, "tool_calls", k)
            call = need_object(call, at)
            need_str(call.get("id"), (*at, "id"))
            kind = call.get("type", "function")
            if kind == "function":
                fn = need_object(call.get("function"), (*at, "function"))
                need_str(fn.get("name"), (*at, "function", "name"), non_empty=True)
                need_str(fn.get("arguments"), (*at, "function", "arguments"))
            elif kind == "custom":
                custom = need_object(call.get("custom"), (*at, "custom"))
                need_str(custom.get("name"), (*at, "custom", "name"), non_empty=True)
                need_str(custom.get("input"), (*at, "custom", "input"))
            else:
                fail((*at, "type"), f"expected 'function' or 'custom', got {short(kind)}", "invalid_value")
    function_call = msg.get("function_call")
    if function_call is not None:
        fc = need_object(function_call, (*path, "function_call"))
        need_str(fc.get("name"), (*path, "function_call", "name"))
        need_str(fc.get("arguments"), (*path, "function_call", "arguments"))


def _tool(msg: dict[str, Any], path: Path) -> None:
    _content(msg, path, _TEXT_ONLY, required=True)
    call_id = msg.get("tool_call_id")
    if call_id is None:
        fail((*path, "tool_call_id"), "a tool message needs 'tool_call_id'", "missing_required_parameter")
    need_str(call_id, (*path, "tool_call_id"))


def _function(msg: dict[str, Any], path: Path) -> None:
    need_str(msg.get("name"), (*path, "name"), non_empty=True)
    content = msg.get("content")
    if content is not None:
        need_str(content, (*path, "content"))


_ROLE_CHECKS: dict[str, Callable[[dict[str, Any], Path], None]] = {
    "system": _system,
    "developer": _system,
    "user": _user,
    "assistant": _assistant,
    "tool": _tool,
    "function": _function,
}


def _messages(value: Any, path: Path) -> None:
    if not isinstance(value, list) or not value:
        fail(path, f"expected a non-empty array of messages, got {kind_of(value) if value != [] else 'an empty array'}")
    for i, msg in enumerate(value):
        at = (*path, i)
        if not isinstance(msg, dict):
            fail(at, f"expected a message object, got {kind_of(msg)}")
        role = msg.get("role")
        check = _ROLE_CHECKS.get(role) if isinstance(role, str) else None
        if check is None:
            fail((*at, "role"), f"expected one of {sorted(ROLES)}, got {short(role)}", "invalid_value")
        check(msg, at)


# -- tools ---------------------------------------------------------------------------------------------------------


def _function_def(fn: Any, path: Path) -> None:
    fn = need_object(fn, path)
    need_str(fn.get("name"), (*path, "name"), non_empty=True)
    optional_str(fn, "description", path)
    if fn.get("parameters") is not None:
        need_object(fn["parameters"], (*path, "parameters"))
    if fn.get("strict") is not None:
        need_bool(fn["strict"], (*path, "strict"))


def _tools(value: Any, path: Path) -> None:
    for i, tool in enumerate(need_list(value, path)):
        at = (*path, i)
        tool = need_object(tool, at)
        kind = tool.get("type")
        if kind == "function":
            _function_def(tool.get("function"), (*at, "function"))
        elif kind == "custom":
            custom = need_object(tool.get("custom"), (*at, "custom"))
            need_str(custom.get("name"), (*at, "custom", "name"), non_empty=True)
        else:
            fail((*at, "type"), f"expected 'function' or 'custom', got {short(kind)}", "invalid_value")


def _functions(value: Any, path: Path) -> None:
    for i, fn in enumerate(need_list(value, path)):
        _function_def(fn, (*path, i))


def _tool_choice(value: Any, path: Path) -> None:
    if isinstance(value, str):
        need_enum(value, path, _TOOL_CHOICE_MODES)
        return
    choice = need_object(value, path)
    kind = choice.get("type")
    if kind == "function":
        fn = need_object(choice.get("function"), (*path, "function"))
        need_str(fn.get("name"), (*path, "function", "name"), non_empty=True)
    elif kind == "custom":
        custom = need_object(choice.get("custom"), (*path, "custom"))
        need_str(custom.get("name"), (*path, "custom", "name"), non_empty=True)
    elif kind == "allowed_tools":
        need_object(choice.get("allowed_tools"), (*path, "allowed_tools"))
    else:
        fail((*path, "type"), f"expected 'function', 'custom' or 'allowed_tools', got {short(kind)}", "invalid_value")


def _function_call(value: Any, path: Path) -> None:
    if isinstance(value, str):
        need_enum(value, path, _FUNCTION_CALL_MODES)
    else:
        need_str(need_object(value, path).get("name"), (*path, "name"), non_empty=True)


def _response_format(value: Any, path: Path) -> None:
    fmt = need_object(value, path)
    kind = need_enum(fmt.get("type"), (*path, "type"), _RESPONSE_FORMATS)
    if kind == "json_schema":
        spec = need_object(fmt.get("json_schema"), (*path, "json_schema"))
        need_str(spec.get("name"), (*path, "json_schema", "name"), non_empty=True)
        if spec.get("schema") is not None:
            need_object(spec["schema"], (*path, "json_schema", "schema"))


def _stream_options(value: Any, path: Path) -> None:
    options = need_object(value, path)
    for name in ("include_usage", "include_obfuscation"):
        if options.get(name) is not None:
            need_bool(options[name], (*path, name))


def _stop(value: Any, path: Path) -> None:
    if not isinstance(value, str):
        need_str_list(value, path)


def _logit_bias(value: Any, path: Path) -> None:
    for token, bias in need_object(value, path).items():
        need_number(bias, (*path, token), -100, 100)


def _model(value: Any, path: Path) -> None:
    if not isinstance(value, str) or not value.strip():
        fail(path, f"expected a non-empty string, got {kind_of(value)}", "invalid_type")


def _positive_int(value: Any, path: Path) -> None:
    need_int(value, path, 1)


# Field → check; a field that is absent or null is not checked (the required ones are checked after the loop).
_FIELDS: dict[str, Callable[[Any, Path], Any]] = {
    "model": _model,
    "messages": _messages,
    "temperature": lambda v, p: need_number(v, p, 0, 2),
    "top_p": lambda v, p: need_number(v, p, 0, 1),
    "n": lambda v, p: need_int(v, p, 1, 128),
    "max_tokens": _positive_int,
    "max_completion_tokens": _positive_int,
    "stream": need_bool,
    "stream_options": _stream_options,
    "stop": _stop,
    "presence_penalty": lambda v, p: need_number(v, p, -2, 2),
    "frequency_penalty": lambda v, p: need_number(v, p, -2, 2),
    "logit_bias": _logit_bias,
    "logprobs": need_bool,
    "top_logprobs": lambda v, p: need_int(v, p, 0, 20),
    "seed": lambda v, p: need_int(v, p, -INT64_MAX - 1, INT64_MAX),
    "user": need_str,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": need_bool,
    "functions": _functions,
    "function_call": _function_call,
    "response_format": _response_format,
    "metadata": need_object,
    "store": need_bool,
    "modalities": need_str_list,
    "audio": need_object,
    "prediction": need_object,
    "web_search_options": need_object,
    "service_tier": need_str,
    "reasoning_effort": need_str,
    "verbosity": need_str,
}


def validate_chat(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Check a chat-completions body against OpenAI's schema; returns ``(model, messages)``.

    Raises ``InvalidRequestError`` naming the first offending field (``param`` = its path)."""
    return check_openai_body(body, _FIELDS, "messages")
