"""The OpenAI-compatible inbound API: ``POST /v1/chat/completions`` and ``GET /v1/models``, and OpenAI's error shape.

The canonical format is OpenAI's, so responses pass through byte for byte; the only rewrite is dropping the
usage chunk of a stream whose client did not ask for it (Apex always asks upstream, to never lose usage).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.calls import CallRecord
from gateway.chat import run_chat
from gateway.errors import JSON, ApexError, error_response
from gateway.lifecycle import CallLifecycle, WireFormat, optimizer_headers
from gateway.providers.base import ChatResult
from gateway.state import GatewayState
from gateway.stream import StreamSession

__all__ = ["OPENAI", "chat_completions", "list_models"]


async def _sse(session: StreamSession, wants_usage: bool) -> AsyncIterator[bytes]:
    try:
        async with contextlib.aclosing(session.chunks()) as chunks:
            async for chunk in chunks:
                data, raw = chunk.data, chunk.raw
                if not wants_usage and "usage" in data:
                    # drop the usage-only chunk the client did not ask for; strip the field from the others
                    raw = orjson.dumps({k: v for k, v in data.items() if k != "usage"}) if data.get("choices") else b""
                if raw:
                    yield b"data: " + raw + b"\n\n"
                    session.mark_sent()
        yield b"data: [DONE]\n\n"
    except ApexError as err:
        # The status line has gone out as 200: the failure must reach the client in-band, never a silent stop.
        yield b"data: " + err.body() + b"\n\n"


def _same(body: dict[str, Any]) -> dict[str, Any]:
    return body


def _render_chat(call: CallRecord, body: dict[str, Any], outcome: ChatResult | StreamSession) -> Response:
    headers = optimizer_headers(call)
    if isinstance(outcome, StreamSession):
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            _sse(outcome, wants_usage),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )
    return Response(outcome.body, media_type=JSON, headers=headers)


OPENAI = WireFormat(render_error=error_response, to_canonical=_same, render=_render_chat)
chat_completions = CallLifecycle("/v1/chat/completions", OPENAI, run_chat).handle


async def list_models(request: Request) -> Response:
    state: GatewayState = request.app.state.apex
    request_id = CallRecord(endpoint="/v1/models").request_id
    try:
        await state.authenticate(request)
    except ApexError as err:
        return error_response(err, request_id)
    data = [
        {"id": m.name, "object": "model", "created": 0, "owned_by": f"apex:{m.provider}"} for m in state.settings.models
    ]
    auto = state.settings.optimizers.auto_routing
    if auto.enabled:
        data.append({"id": auto.alias, "object": "model", "created": 0, "owned_by": "apex:auto-routing"})
    return Response(
        orjson.dumps({"object": "list", "data": data}), media_type=JSON, headers={"x-request-id": request_id}
    )
