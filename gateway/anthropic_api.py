"""The Anthropic-native inbound API: ``POST /v1/messages``, so the official ``anthropic`` SDK can use Apex.

The request is translated to the canonical body, run through ``run_chat`` like any other call, and the answer
rendered back as an Anthropic ``message`` or as Anthropic SSE events. Errors use Anthropic's error shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.calls import CallRecord
from gateway.chat import StreamSession, attribute, optimizer_headers, run_chat
from gateway.errors import ApexError, InvalidRequestError
from gateway.inbound import client_headers, read_json_body
from gateway.openai_api import JSON, internal_error
from gateway.state import GatewayState
from gateway.translate.anthropic import (
    AnthropicStreamWriter,
    error_type_for_status,
    from_anthropic_request,
    to_anthropic_message,
)

__all__ = ["messages"]

ENDPOINT = "/v1/messages"


def _error_body(err: ApexError) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": error_type_for_status(err.status), "message": err.message}})


def anthropic_error_response(err: ApexError, request_id: str) -> Response:
    headers = {"x-request-id": request_id, "request-id": request_id, **err.headers()}
    return Response(_error_body(err), status_code=err.status, media_type=JSON, headers=headers)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _validate(body: dict[str, Any]) -> None:
    """What Anthropic requires beyond the canonical checks ``run_chat`` does."""
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequestError("max_tokens: Field required", param="max_tokens", code="missing_required_parameter")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequestError("max_tokens: must be a positive integer", param="max_tokens", code="invalid_value")
    if not isinstance(body.get("messages"), list):
        raise InvalidRequestError("messages: Field required", param="messages", code="missing_required_parameter")
    for i, msg in enumerate(body["messages"]):
        content = msg.get("content") if isinstance(msg, dict) else None
        if not isinstance(content, str | list):
            raise InvalidRequestError(
                f"messages.{i}.content: must be a string or a list of content blocks",
                param=f"messages.{i}.content",
            )
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise InvalidRequestError("system: must be a string or a list of text blocks", param="system")


async def _sse(session: StreamSession, model: str) -> AsyncIterator[bytes]:
    writer = AnthropicStreamWriter(model)
    try:
        async with contextlib.aclosing(session.chunks()) as chunks:
            async for chunk in chunks:
                for name, data in writer.feed(chunk.data):
                    yield _event(name, data)
                    session.mark_sent()
        for name, data in writer.finish():
            yield _event(name, data)
    except ApexError as err:
        # The status line has gone out as 200: Anthropic clients expect an in-band `error` event.
        yield b"event: error\ndata: " + _error_body(err) + b"\n\n"


async def messages(request: Request) -> Response:
    state: GatewayState = request.app.state.apex
    call = CallRecord(endpoint=ENDPOINT)
    try:
        call.key = state.authenticate(request)
    except ApexError as err:
        return anthropic_error_response(err, call.request_id)
    streaming = False
    try:
        native = await read_json_body(request, state.settings.gateway.max_body_bytes)
        _validate(native)
        body = from_anthropic_request(native)
        attribute(call, request, body)
        outcome = await run_chat(state, call, body, headers=client_headers(request))
        headers = {**optimizer_headers(call), "request-id": call.request_id}
        model = str(native.get("model"))
        if isinstance(outcome, StreamSession):
            streaming = True
            return StreamingResponse(
                _sse(outcome, model), media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"}
            )
        message = to_anthropic_message(orjson.loads(outcome.body), model)
        return Response(orjson.dumps(message), media_type=JSON, headers=headers)
    except ApexError as err:
        call.fail(err)
        return anthropic_error_response(err, call.request_id)
    except Exception:
        return anthropic_error_response(internal_error(call), call.request_id)
    finally:
        if not streaming:
            state.finish(call)
