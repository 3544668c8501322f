"""A bare pass-through proxy on the gateway's stack: the baseline the Apex gateway is measured against.

Same stack as ``apex gateway`` (Starlette on uvicorn with uvloop + httptools, one ``aiohttp.ClientSession`` with
the gateway's connector settings for the upstream) and nothing else: no auth, no JSON parsing, no limits, no
pricing, no events. ``POST /v1/chat/completions`` forwards the body as is; a JSON answer is returned as is, an SSE
answer (``text/event-stream``) is streamed through chunk by chunk as it arrives. ``GET /health`` answers 200.

    .venv/bin/python bench/bare_proxy.py --port 18600 --upstream http://127.0.0.1:18001/v1
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

_FORWARD = ("content-type", "authorization", "accept")


def create_app(upstream: str) -> Starlette:
    url = upstream.rstrip("/") + "/chat/completions"
    holder: dict[str, aiohttp.ClientSession] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)  # as the gateway's
        holder["session"] = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        try:
            yield
        finally:
            await holder["session"].close()

    async def chat(request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k in _FORWARD if (v := request.headers.get(k)) is not None}
        resp = await holder["session"].post(url, data=body, headers=headers)
        ctype = resp.headers.get("content-type", "application/json")
        if not ctype.startswith("text/event-stream"):
            try:
                raw = await resp.read()
            finally:
                resp.release()
            return Response(raw, status_code=resp.status, media_type=ctype)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
            finally:
                resp.close()

        return StreamingResponse(relay(), status_code=resp.status, media_type=ctype)

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18600)
    parser.add_argument("--upstream", default="http://127.0.0.1:18001/v1", help="base URL, up to /v1")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.upstream),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # as the gateway
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
