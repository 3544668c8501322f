"""Serve the gateway with uvicorn; SIGTERM/SIGINT shut it down gracefully and flush every event."""

from __future__ import annotations

import logging

import uvicorn

from gateway.app import create_app
from gateway.config import Settings

__all__ = ["serve"]


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, log_level: str = "info") -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host or settings.gateway.host,
        port=port or settings.gateway.port,
        log_level=log_level,
        access_log=False,  # one event per call is the access log; uvicorn's line per request costs throughput
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=30,
        lifespan="on",
    )
    uvicorn.Server(config).run()
