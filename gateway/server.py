"""Serve the gateway with uvicorn; SIGTERM/SIGINT shut it down gracefully and flush every event."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from gateway.config import Settings
from gateway.logs import configure_logging

__all__ = ["serve"]


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, log_level: str = "info") -> None:
    configure_logging(log_level, settings.gateway.log_format)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host or settings.gateway.host,
        port=port or settings.gateway.port,
        log_level=log_level,
        log_config=None,  # uvicorn's own lines go through the same (structured, scrubbed) handler
        access_log=False,  # one event per call is the access log; uvicorn's line per request costs throughput
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=30,
        lifespan="on",
    )
    uvicorn.Server(config).run()
