"""Process-wide gateway state: settings, key store, prices, providers, dispatcher, event writer, metrics, levers."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import time
from dataclasses import dataclass, field

from starlette.requests import Request

from contracts.pricing import PriceTable
from contracts.settings import ModelRoute, Settings
from contracts.tokens import count_text_tokens
from gateway.admin_auth import MasterKey
from gateway.cache.exact import ExactCache
from gateway.calls import CallRecord
from gateway.errors import AuthenticationError
from gateway.events.rows import EventRows
from gateway.events.writer import EventWriter
from gateway.inbound import bearer_token
from gateway.keys import ApiKey, KeyStore
from gateway.levers.base import LeverSet
from gateway.limits import Limiter, build_store
from gateway.metrics import GatewayMetrics
from gateway.providers import build_provider
from gateway.providers.base import Provider
from gateway.routing.dispatch import Dispatcher
from gateway.upstream import Transport, make_transport

__all__ = ["GatewayState"]

log = logging.getLogger("apex.gateway")


@dataclass
class GatewayState:
    settings: Settings
    keys: KeyStore
    prices: PriceTable
    writer: EventWriter | None = None
    transport: Transport | None = None
    providers: dict[str, Provider] = field(default_factory=dict)
    dispatcher: Dispatcher | None = None
    gateway_id: str = field(default_factory=lambda: f"{socket.gethostname()[:24]}-{os.getpid()}")
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    started: float = field(default_factory=time.time)
    master_key: MasterKey | None = None
    cache: ExactCache | None = None
    limiter: Limiter | None = None
    levers: LeverSet = field(default_factory=LeverSet)
    """Built and started by the app once the state has started (``gateway.levers.registry.build_levers``)."""
    routes: dict[str, ModelRoute] = field(init=False)
    """Model name → route for chat calls: the configured models, plus names a lever answers for (the auto alias)."""

    def __post_init__(self) -> None:
        self.routes = {m.name: m for m in self.settings.models}

    async def start(self) -> None:
        s = self.settings
        self.master_key = MasterKey(s)
        store = build_store(s)
        await store.start()
        self.limiter = Limiter(store, self.keys, self.prices, s.limits)
        exact = s.cache.exact
        self.cache = ExactCache(ttl_s=exact.ttl_s, max_entries=exact.max_entries, max_bytes=exact.max_bytes)
        # The writer thread builds each call's event row and feeds the metrics a drain of rows at a time.
        rows = EventRows(self.prices, gateway_id=self.gateway_id, store_prompts=s.gateway.store_prompts)
        self.writer = EventWriter(
            s.data.events_path,
            gateway_id=self.gateway_id,
            queue_size=s.events.queue_size,
            flush_rows=s.events.flush_rows,
            flush_seconds=s.events.flush_seconds,
            prepare=rows.row,
            observe=self.metrics.observe_rows,
        )
        self.metrics.watch_writer(self.writer.snapshot)
        self.transport = make_transport(s.gateway.upstream_transport)
        self.providers = {p.name: build_provider(p, self.transport) for p in s.providers}
        self.dispatcher = Dispatcher(s, self.providers, self.metrics)
        await self.dispatcher.start()
        # load the tokenizer now rather than on the first request that needs an estimate
        await asyncio.to_thread(count_text_tokens, "warm up")
        self._flusher = asyncio.create_task(self._flush_spend_forever())
        self._collector = asyncio.create_task(self._collect_garbage_forever())

    async def _flush_spend_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(self.keys.flush)

    async def _collect_garbage_forever(self, every_s: float = 10.0) -> None:
        """A full cyclic-GC pass at a fixed pace. The server raises the gen-0 threshold (fewer, cheaper passes on
        the request path); without this, request-scoped cycles that outlive two young passes pile up in the old
        generation, whose automatic passes get rarer as it grows, and RSS climbs (seen in bench/soak.py)."""
        while True:
            await asyncio.sleep(every_s)
            gc.collect()

    async def stop(self) -> None:
        self._flusher.cancel()
        self._collector.cancel()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        for p in self.providers.values():
            await p.close()
        if self.transport is not None:
            await self.transport.close()
        self.keys.flush()
        if self.limiter is not None:
            await self.limiter.store.stop()
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)
            log.info("event writer closed: %s", self.writer.snapshot())

    def authenticate(self, request: Request) -> ApiKey:
        key = self.keys.verify(bearer_token(request))
        if key is None:
            self.metrics.auth_failures.inc()
            raise AuthenticationError(
                "Incorrect API key provided. Create one with `apex keys create`.", code="invalid_api_key"
            )
        return key

    def finish(self, call: CallRecord) -> None:
        """Close the call and hand it to the writer. Never raises into the request.

        Only pricing (for the spend counter) happens here; the event itself is built in the writer thread."""
        try:
            try:
                priced = call.close(self.prices)
            finally:
                # settle the budget hold to the priced cost (or release it): never left behind
                if self.limiter is not None:
                    self.limiter.close(call)
            if call.key is not None and priced is not None and priced.cost_usd:
                self.keys.record_spend(call.key.key_id, priced.cost_usd)
            assert self.writer is not None
            self.writer.record(call)
        except Exception:
            log.exception("could not record the event for request %s", call.request_id)
