"""uvicorn's httptools protocol with a deadline for a request's headers (slowloris).

uvicorn bounds the idle time between requests (``timeout_keep_alive``) but not how long a client may take to send
a request's headers: a client trickling one header byte at a time holds a connection forever. Here a request's
headers must be complete within ``header_timeout_s`` of its first byte (or of the connection, for the first
request); otherwise the connection is closed. The check is one timer per connection that fires every half
deadline, not a timer per request, so a keep-alive connection's requests cost nothing extra. The body's own
deadline is ``gateway.body_read_timeout_s`` (``gateway.inbound.BodyReadGuard``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HeaderDeadlineProtocol", "protocol_with_header_timeout"]

log = logging.getLogger("apex.gateway")


class HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout_s: float = 10.0

    _waiting_since: float | None
    _watch: asyncio.TimerHandle | None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._waiting_since = self.loop.time()
        self._watch = self.loop.call_later(self._period(), self._check)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._waiting_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._waiting_since = None
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def _period(self) -> float:
        return max(0.05, self.header_timeout_s / 2)

    def _check(self) -> None:
        self._watch = None
        if self.transport.is_closing():
            return
        since = self._waiting_since  # None once headers are in, until the next request's first byte (idle
        # time between the requests of a keep-alive connection is uvicorn's timeout_keep_alive's)
        if since is not None and self.loop.time() - since >= self.header_timeout_s:
            log.debug("closing a connection whose request headers took over %.1f s", self.header_timeout_s)
            self.transport.close()
            return
        self._watch = self.loop.call_later(self._period(), self._check)


def protocol_with_header_timeout(header_timeout_s: float) -> type[Any]:
    """The protocol class for ``uvicorn.Config(http=...)`` with this deadline."""
    return type("ApexHttpProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": header_timeout_s})
