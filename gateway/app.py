"""The gateway's ASGI app: routes, the per-call flow, and the process-wide state it shares.

Flow of a chat call: authenticate → read and validate the body → resolve the model route → check the budget →
call the provider (streaming or not) → respond → record one event (always, in ``finally``).
Requests without a valid key get a 401 and no event (they are counted, so a key-guessing flood cannot fill the
event log); every authenticated call produces exactly one event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.calls import CallRecord
from gateway.config import Settings
from gateway.errors import ApexError, AuthenticationError, InvalidRequestError, NotFoundError, RateLimitError
from gateway.events.writer import EventWriter
from gateway.inbound import bearer_token, read_json_body, validate_chat_request
from gateway.keys import ApiKey, KeyStore
from gateway.metrics import GatewayMetrics
from gateway.pricing import PriceTable
from gateway.providers import Provider, StreamChunk, Usage, build_provider
from gateway.tokens import count_message_tokens, count_text_tokens
from gateway.upstream import Transport, make_transport

__all__ = ["GatewayState", "create_app"]

log = logging.getLogger("apex.gateway")
JSON = "application/json"


@dataclass
class GatewayState:
    settings: Settings
    keys: KeyStore
    prices: PriceTable
    writer: EventWriter | None = None
    transport: Transport | None = None
    providers: dict[str, Provider] = field(default_factory=dict)
    gateway_id: str = field(default_factory=lambda: f"{socket.gethostname()[:24]}-{os.getpid()}")
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    started: float = field(default_factory=time.time)

    async def start(self) -> None:
        s = self.settings
        self.writer = EventWriter(
            s.data.events_path,
            gateway_id=self.gateway_id,
            queue_size=s.events.queue_size,
            flush_rows=s.events.flush_rows,
            flush_seconds=s.events.flush_seconds,
            prepare=self.event_for,
        )
        self.metrics.watch_writer(self.writer.snapshot)
        self.transport = make_transport(s.gateway.upstream_transport)
        self.providers = {p.name: build_provider(p, self.transport) for p in s.providers}
        # load the tokenizer now rather than on the first request that needs an estimate
        await asyncio.to_thread(count_text_tokens, "warm up")
        self._flusher = asyncio.create_task(self._flush_spend_forever())

    async def _flush_spend_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(self.keys.flush)

    async def stop(self) -> None:
        self._flusher.cancel()
        for p in self.providers.values():
            await p.close()
        if self.transport is not None:
            await self.transport.close()
        self.keys.flush()
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)
            log.info("event writer closed: %s", self.writer.snapshot())

    def finish(self, call: CallRecord) -> None:
        """Close the call and hand it to the writer. Never raises into the request.

        Only pricing (for the spend counter) happens here; the event itself is built in the writer thread."""
        try:
            priced = call.close(self.prices)
            if call.key is not None and priced is not None and priced.cost_usd:
                self.keys.record_spend(call.key.key_id, priced.cost_usd)
            assert self.writer is not None
            self.writer.record(call)
        except Exception:
            log.exception("could not record the event for request %s", call.request_id)

    def event_for(self, call: CallRecord) -> dict[str, Any]:
        """Runs in the writer thread: the event row, and the metrics it feeds."""
        ev = call.to_event(self.prices, gateway_id=self.gateway_id, store_prompts=self.settings.gateway.store_prompts)
        self.metrics.observe(ev)
        return ev


def _error(err: ApexError, request_id: str) -> Response:
    headers = {"x-request-id": request_id, **err.headers()}
    return Response(err.body(), status_code=err.status, media_type=JSON, headers=headers)


def _authenticate(state: GatewayState, request: Request) -> ApiKey:
    token = bearer_token(request)
    key = state.keys.verify(token)
    if key is None:
        state.metrics.auth_failures.inc()
        raise AuthenticationError(
            "Incorrect API key provided. Create one with `apex keys create`.", code="invalid_api_key"
        )
    return key


def _attribution(call: CallRecord, request: Request, body: dict[str, Any]) -> None:
    call.end_user = body.get("user") or request.headers.get("x-apex-user")
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    feature = request.headers.get("x-apex-feature") or meta.get("feature")
    call.feature = feature if isinstance(feature, str) else None
    tags = request.headers.get("x-apex-tags")
    call.tags = [t.strip() for t in tags.split(",") if t.strip()] if tags else None


def _check_budget(state: GatewayState, key: ApiKey) -> None:
    if key.budget_usd is not None and state.keys.spent(key) >= key.budget_usd:
        raise RateLimitError(
            f"Budget of ${key.budget_usd:.2f} for key {key.name!r} is spent. Raise it with `apex keys` or use "
            "another key.",
            code="budget_exceeded",
        )


async def chat_completions(request: Request) -> Response:
    state: GatewayState = request.app.state.apex
    call = CallRecord(endpoint="/v1/chat/completions")
    try:
        call.key = _authenticate(state, request)
    except ApexError as err:
        return _error(err, call.request_id)
    streaming = False
    try:
        body = await read_json_body(request, state.settings.gateway.max_body_bytes)
        _attribution(call, request, body)
        model, messages = validate_chat_request(body)
        call.requested_model = model
        call.messages = messages
        call.is_stream = bool(body.get("stream"))
        route = state.settings.route(model)
        if route is None:
            raise NotFoundError(
                f"The model '{model}' does not exist or is not configured in Apex (see GET /v1/models).",
                param="model",
                code="model_not_found",
            )
        provider = state.providers[route.provider]
        call.provider, call.provider_kind, call.is_simulated = (
            provider.name,
            provider.kind,
            provider.is_simulated,
        )
        call.served_model = route.target
        call.price_model = call.baseline_price_model = route.price_model or route.target
        _check_budget(state, call.key)
        if call.is_stream:
            response = await _stream(state, call, provider, body, route.target)
            streaming = True
            return response
        t_up = time.perf_counter()
        try:
            result = await provider.chat(body, route.target)
        finally:
            call.upstream_s = time.perf_counter() - t_up
        call.finish_reason = result.finish_reason
        if result.usage is not None:
            call.usage, call.usage_source = result.usage, "provider"
        else:
            call.usage, call.usage_source = (
                _estimate(messages, model, _completion_text(result.body)),
                "estimated",
            )
        return Response(result.body, media_type=JSON, headers={"x-request-id": call.request_id})
    except ApexError as err:
        call.fail(err)
        return _error(err, call.request_id)
    except Exception:
        log.exception("unexpected error in request %s", call.request_id)
        err = ApexError(
            "The gateway hit an internal error; the request id identifies it in the logs.",
            code="internal_error",
        )
        call.fail(err)
        return _error(err, call.request_id)
    finally:
        if not streaming:
            state.finish(call)


def _completion_text(raw: bytes) -> str:
    try:
        choices = orjson.loads(raw).get("choices") or []
        return "".join((c.get("message") or {}).get("content") or "" for c in choices if isinstance(c, dict))
    except Exception:
        return ""


def _estimate(messages: Any, model: str, completion_text: str) -> Usage:
    return Usage(
        prompt_tokens=count_message_tokens(messages, model),
        completion_tokens=count_text_tokens(completion_text, model),
    )


def _delta_text(data: dict[str, Any]) -> str:
    out = []
    for choice in data.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            out.append(delta["content"])
    return "".join(out)


async def _stream(
    state: GatewayState, call: CallRecord, provider: Provider, body: dict[str, Any], target: str
) -> Response:
    """Open the upstream stream and wait for its first chunk before answering, so that an upstream error
    still gets its real status code; from then on, failures travel as an SSE error event."""
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chunks = provider.chat_stream(body, target)
    t_up = time.perf_counter()
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise InvalidRequestError("provider returned an empty stream", code="upstream_empty_stream") from None
    except ApexError:
        call.upstream_s = time.perf_counter() - t_up
        await chunks.aclose()
        raise
    return StreamingResponse(
        _relay(state, call, chunks, first, wants_usage, t_up),
        media_type="text/event-stream",
        headers={"x-request-id": call.request_id, "cache-control": "no-cache"},
    )


async def _relay(
    state: GatewayState,
    call: CallRecord,
    chunks: AsyncIterator[StreamChunk],
    first: StreamChunk,
    wants_usage: bool,
    t_up: float,
) -> AsyncIterator[bytes]:
    text: list[str] = []
    usage: Usage | None = None
    try:
        chunk: StreamChunk | None = first
        while chunk is not None:
            data = chunk.data
            if data.get("usage"):
                usage = Usage.from_openai(data["usage"])
            for choice in data.get("choices") or ():
                if isinstance(choice, dict) and choice.get("finish_reason"):
                    call.finish_reason = choice["finish_reason"]
            text.append(_delta_text(data))
            raw = chunk.raw
            if not wants_usage and "usage" in data:
                # drop the usage-only chunk the client did not ask for; strip the field from the others
                raw = orjson.dumps({k: v for k, v in data.items() if k != "usage"}) if data.get("choices") else b""
            if raw:
                yield b"data: " + raw + b"\n\n"
                if call.ttft_s is None:
                    call.ttft_s = time.perf_counter() - call.t0
            chunk = await anext(chunks, None)
        call.upstream_s = time.perf_counter() - t_up
        yield b"data: [DONE]\n\n"
    except ApexError as err:
        # The status line has gone out as 200: the failure must reach the client in-band, never a silent stop.
        call.upstream_s = time.perf_counter() - t_up
        call.fail(err)
        yield b"data: " + err.body() + b"\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        call.http_status, call.error_type = 499, "client_disconnected"
        raise
    finally:
        with contextlib.suppress(Exception):
            await chunks.aclose()
        if usage is not None:
            call.usage, call.usage_source = usage, "provider"
        else:
            # what was streamed is billed by the provider even if the stream did not finish
            call.usage = _estimate(call.messages, call.requested_model or "", "".join(text))
            call.usage_source = "estimated"
        state.finish(call)


async def list_models(request: Request) -> Response:
    state: GatewayState = request.app.state.apex
    request_id = CallRecord(endpoint="/v1/models").request_id
    try:
        _authenticate(state, request)
    except ApexError as err:
        return _error(err, request_id)
    data = [
        {"id": m.name, "object": "model", "created": 0, "owned_by": f"apex:{m.provider}"} for m in state.settings.models
    ]
    return Response(
        orjson.dumps({"object": "list", "data": data}), media_type=JSON, headers={"x-request-id": request_id}
    )


async def health(request: Request) -> Response:
    state: GatewayState = request.app.state.apex
    writer = state.writer.snapshot() if state.writer else {}
    body = {
        "status": "ok",
        "gateway_id": state.gateway_id,
        "uptime_s": round(time.time() - state.started, 1),
        "price_table_version": state.prices.version,
        "auth_failures": int(state.metrics.auth_failures._value.get()),
        "events": writer,
    }
    return Response(orjson.dumps(body), media_type=JSON)


async def metrics(request: Request) -> Response:
    state: GatewayState = request.app.state.apex
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err: ApexError = NotFoundError(f"Unknown endpoint {request.method} {request.url.path}.", code="unknown_url")
    elif exc.status_code == 405:
        err = InvalidRequestError(
            f"Method {request.method} is not allowed on {request.url.path}.", code="method_not_allowed"
        )
        err.status = 405
    else:
        err = ApexError(str(exc.detail))
        err.status = exc.status_code
    return _error(err, CallRecord(endpoint=request.url.path).request_id)


def create_app(settings: Settings, *, keys: KeyStore | None = None, prices: PriceTable | None = None) -> Starlette:
    state = GatewayState(
        settings=settings,
        keys=keys or KeyStore(settings.data.gateway_db_path, cache_seconds=settings.gateway.key_cache_seconds),
        prices=prices or PriceTable.from_litellm(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        log.info(
            "gateway %s ready; %d provider(s), %d model(s)",
            state.gateway_id,
            len(state.providers),
            len(settings.models),
        )
        try:
            yield
        finally:
            await state.stop()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.apex = state
    return app
