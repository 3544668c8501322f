"""The gateway's ASGI app: routes and lifespan.

Every inbound call runs one lifecycle (``gateway.lifecycle``): authenticate → read the body → translate to the
canonical shape → run the flow (``gateway.chat.run_chat``: admit → levers → dispatch) → respond → record one
event (always). Requests without a valid key get a 401 and no event (they are counted, so a key-guessing flood
cannot fill the event log); every authenticated call produces exactly one event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts.ids import new_id
from contracts.pricing import PriceTable
from contracts.settings import Settings
from gateway.admin_api import admin_routes
from gateway.calls import CallRecord
from gateway.errors import JSON, ApexError, InvalidRequestError, NotFoundError, error_response
from gateway.keys import KeyStore
from gateway.levers.registry import build_levers
from gateway.openapi import openapi_spec
from gateway.routing.admin import list_deployments
from gateway.settings import check_settings
from gateway.state import GatewayState
from gateway.wire.anthropic.inbound import anthropic_error_response, messages
from gateway.wire.openai.embeddings import embeddings
from gateway.wire.openai.inbound import chat_completions, list_models

__all__ = ["GatewayState", "create_app"]

log = logging.getLogger("apex.gateway")


async def health(request: Request) -> Response:
    state: GatewayState = request.app.state.apex
    body = {
        "status": "ok",
        "gateway_id": state.gateway_id,
        "uptime_s": round(time.time() - state.started, 1),
        "price_table_version": state.prices.version,
        "auth_failures": state.metrics.auth_failure_count(),
        "events": state.writer.snapshot() if state.writer else {},
        "optimizers": state.levers.stats(),
    }
    return Response(orjson.dumps(body), media_type=JSON, headers={"x-request-id": new_id()})


async def openapi_json(request: Request) -> Response:
    return Response(orjson.dumps(openapi_spec()), media_type=JSON, headers={"x-request-id": new_id()})


async def metrics(request: Request) -> Response:
    state: GatewayState = request.app.state.apex
    request_id = new_id()
    if state.settings.gateway.metrics_auth == "master_key":
        try:
            assert state.master_key is not None
            state.master_key.require(request)
        except ApexError as err:
            return error_response(err, request_id)
    # rendering is CPU work proportional to the series: in a thread, so a scrape never stalls the calls in flight
    body = await asyncio.to_thread(state.metrics.render)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8", headers={"x-request-id": request_id})


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
    request_id = CallRecord(endpoint=request.url.path).request_id
    if request.url.path.startswith("/v1/messages"):  # Anthropic clients parse Anthropic's error shape
        return anthropic_error_response(err, request_id)
    return error_response(err, request_id)


async def _unhandled(request: Request, exc: Exception) -> Response:
    """The last resort for an exception no route caught (a gateway bug): a JSON 500 in the caller's error shape with
    a request id, never Starlette's ``text/plain`` one. Starlette re-raises it afterwards, so the traceback is
    still logged once."""
    request_id = CallRecord(endpoint=request.url.path).request_id
    log.error("unhandled %s on %s %s (request %s)", type(exc).__name__, request.method, request.url.path, request_id)
    err = ApexError(
        "The gateway hit an internal error; the request id identifies it in the logs.", code="internal_error"
    )
    if request.url.path.startswith("/v1/messages"):
        return anthropic_error_response(err, request_id)
    return error_response(err, request_id)


def create_app(settings: Settings, *, keys: KeyStore | None = None, prices: PriceTable | None = None) -> Starlette:
    check_settings(settings)
    state = GatewayState(
        settings=settings,
        keys=keys
        or KeyStore(
            settings.data.gateway_db_path,
            cache_seconds=settings.gateway.key_cache_seconds,
            unknown_cache_seconds=settings.gateway.unknown_key_cache_seconds,
            unknown_cache_size=settings.gateway.unknown_key_cache_size,
        ),
        prices=prices or PriceTable.from_litellm(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        state.levers = build_levers(state)
        await state.levers.start()
        log.info(
            "gateway %s ready; %d provider(s), %d model(s)",
            state.gateway_id,
            len(state.providers),
            len(settings.models),
        )
        try:
            yield
        finally:
            await state.levers.stop()
            await state.stop()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/admin/deployments", list_deployments, methods=["GET"]),
            *admin_routes,
            Route("/openapi.json", openapi_json, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _unhandled},
        lifespan=lifespan,
    )
    app.state.apex = state
    return app
