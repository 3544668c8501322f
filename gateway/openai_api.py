"""The OpenAI-compatible inbound API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

The canonical format is OpenAI's, so responses pass through byte for byte; the only rewrite is dropping the
usage chunk of a stream whose client did not ask for it (Apex always asks upstream, to never lose usage).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.calls import CallRecord
from gateway.chat import StreamSession, attribute, optimizer_headers, run_chat
from gateway.errors import ApexError
from gateway.inbound import client_headers, read_json_body
from gateway.state import GatewayState

__all__ = ["JSON", "chat_completions", "error_response", "internal_error", "list_models"]

log = logging.getLogger("apex.gateway")
JSON = "application/json"


def error_response(err: ApexError, request_id: str) -> Response:
    headers = {"x-request-id": request_id, **err.headers()}
    return Response(err.body(), status_code=err.status, media_type=JSON, headers=headers)


def internal_error(call: CallRecord) -> ApexError:
    log.exception("unexpected error in request %s", call.request_id)
    err = ApexError(
        "The gateway hit an internal error; the request id identifies it in the logs.", code="internal_error"
    )
    call.fail(err)
    return err


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


async def chat_completions(request: Request) -> Response:
    state: GatewayState = request.app.state.apex
    call = CallRecord(endpoint="/v1/chat/completions")
    try:
        call.key = state.authenticate(request)
    except ApexError as err:
        return error_response(err, call.request_id)
    streaming = False
    try:
        body = await read_json_body(request, state.settings.gateway.max_body_bytes)
        attribute(call, request, body)
        outcome = await run_chat(state, call, body, headers=client_headers(request))
        headers = optimizer_headers(call)
        if isinstance(outcome, StreamSession):
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            streaming = True
            return StreamingResponse(
                _sse(outcome, wants_usage),
                media_type="text/event-stream",
                headers={**headers, "cache-control": "no-cache"},
            )
        return Response(outcome.body, media_type=JSON, headers=headers)
    except ApexError as err:
        call.fail(err)
        return error_response(err, call.request_id)
    except Exception:
        return error_response(internal_error(call), call.request_id)
    finally:
        if not streaming:
            state.finish(call)


async def list_models(request: Request) -> Response:
    state: GatewayState = request.app.state.apex
    request_id = CallRecord(endpoint="/v1/models").request_id
    try:
        state.authenticate(request)
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
