"""Serve the gateway with uvicorn; SIGTERM/SIGINT shut it down gracefully, within ``gateway.drain_timeout_s``.

The process first takes its data directory's lock (``gateway.data_lock``): a second gateway on the same directory
exits at once, before it touches a file there. On SIGTERM, in-flight calls get most of the drain timeout to finish
and the event writer the rest to write Parquet; if that time runs out, whatever is still queued goes to the
write-ahead log (replayed at the next start) and the process exits, so an orchestrator's SIGKILL never has to.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from contracts.settings import Settings
from gateway.app import create_app
from gateway.data_lock import DataDirLocked, lock_data_dir
from gateway.http_protocol import protocol_with_header_timeout
from gateway.logs import configure_logging

__all__ = ["serve"]

log = logging.getLogger("apex.gateway")


class _BoundedDrainServer(uvicorn.Server):
    """A uvicorn server whose first exit signal starts a watchdog: the process ends ``drain_timeout_s`` later
    at the latest, with every accepted event in the write-ahead log or Parquet."""

    def __init__(self, config: uvicorn.Config, app: Starlette, drain_timeout_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._drain_timeout_s = drain_timeout_s
        self._watchdog: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Timer(self._drain_timeout_s, self._out_of_time)
            self._watchdog.daemon = True
            self._watchdog.start()
        super().handle_exit(sig, frame)

    def _out_of_time(self) -> None:
        state = getattr(self._app.state, "apex", None)
        writer = getattr(state, "writer", None)
        moved = writer.seal() if writer is not None else 0
        log.error(
            "the drain did not finish in %.1f s (gateway.drain_timeout_s); exiting with %d queued events moved to "
            "the write-ahead log (the next start writes them)",
            self._drain_timeout_s,
            moved,
        )
        logging.shutdown()
        os._exit(0)


def _lock_data_dirs(settings: Settings) -> list[int]:
    data = settings.data
    dirs = [data.dir.resolve()]
    events = data.events_path.resolve()
    if not events.is_relative_to(dirs[0]):  # the write-ahead log lives with the events
        dirs.append(events)
    return [lock_data_dir(d) for d in dirs]


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, log_level: str = "info") -> None:
    configure_logging(log_level, settings.gateway.log_format)
    try:
        held = _lock_data_dirs(settings)  # before anything touches the data directory
    except DataDirLocked as err:
        raise SystemExit(f"apex gateway: {err}") from None
    # The event writer is a second thread running Python code; with CPython's default 5 ms switch interval a
    # request arriving while it holds the GIL can wait up to 5 ms. 0.5 ms bounds that wait (in bench/ the c=1
    # tail was dominated by other causes — GC and long Arrow calls — so this is a bound, not a measured win).
    sys.setswitchinterval(0.0005)
    # Buffered events are many small acyclic objects; a full cyclic-GC pass over them took milliseconds on the
    # request path. Collect young objects less often and keep start-up objects out of every pass.
    gc.set_threshold(20_000, 10, 10)
    gc.freeze()
    app = create_app(settings)
    drain = settings.gateway.drain_timeout_s
    config = uvicorn.Config(
        app,
        host=host or settings.gateway.host,
        port=port or settings.gateway.port,
        log_level=log_level,
        log_config=None,  # uvicorn's own lines go through the same (structured, scrubbed) handler
        access_log=False,  # one event per call is the access log; uvicorn's line per request costs throughput
        loop="uvloop",
        http=protocol_with_header_timeout(settings.gateway.header_read_timeout_s),  # httptools + a header deadline
        # in-flight calls get most of the drain; the rest is for the lifespan's shutdown (writing Parquet)
        timeout_graceful_shutdown=max(1, int(max(drain - 5.0, drain * 0.6))),
        lifespan="on",
    )
    _BoundedDrainServer(config, app, drain).run()
    for fd in held:
        os.close(fd)
