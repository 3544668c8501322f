"""The Anthropic-native inbound API: ``POST /v1/messages``, so the official ``anthropic`` SDK can use Apex.

The request is translated to the canonical body and run like any other call (``gateway.lifecycle``); the answer is
rendered back as an Anthropic ``message`` or as Anthropic SSE events. Errors use Anthropic's error shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from gateway.calls import CallRecord
from gateway.chat import run_chat
from gateway.errors import JSON, ApexError
from gateway.lifecycle import CallLifecycle, WireFormat, optimizer_headers
from gateway.providers.base import ChatResult
from gateway.schemas import validate_messages
from gateway.stream import StreamSession
from gateway.wire.anthropic.common import error_type_for_status
from gateway.wire.anthropic.translate_inbound import (
    AnthropicStreamWriter,
    from_anthropic_request,
    to_anthropic_message,
)

__all__ = ["ANTHROPIC", "anthropic_error_response", "messages"]

ENDPOINT = "/v1/messages"


def _error_body(err: ApexError) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": error_type_for_status(err.status), "message": err.message}})


def anthropic_error_response(err: ApexError, request_id: str) -> Response:
    headers = {"x-request-id": request_id, "request-id": request_id, **err.headers()}
    return Response(_error_body(err), status_code=err.status, media_type=JSON, headers=headers)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _to_canonical(body: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's schema checked on the native body (errors name Anthropic's fields), then the canonical body."""
    validate_messages(body)
    return from_anthropic_request(body)


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


def _render(call: CallRecord, native: dict[str, Any], outcome: ChatResult | StreamSession) -> Response:
    headers = {**optimizer_headers(call), "request-id": call.request_id}
    model = str(native.get("model"))
    if isinstance(outcome, StreamSession):
        return StreamingResponse(
            _sse(outcome, model), media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"}
        )
    message = to_anthropic_message(orjson.loads(outcome.body), model)
    return Response(orjson.dumps(message), media_type=JSON, headers=headers)


ANTHROPIC = WireFormat(render_error=anthropic_error_response, to_canonical=_to_canonical, render=_render)
messages = CallLifecycle(ENDPOINT, ANTHROPIC, run_chat).handle
