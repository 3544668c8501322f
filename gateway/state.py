"""Process-wide gateway state: settings, key store, prices, providers, dispatcher, event writer, metrics, levers."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from contracts.pricing import PriceTable
from contracts.settings import ModelRoute, Settings
from contracts.tokens import count_text_tokens
from gateway.admin_auth import MasterKey, client_address
from gateway.cache.exact import ExactCache
from gateway.calls import CallRecord
from gateway.errors import ApexError, AuthenticationError, RateLimitError
from gateway.events.ledger import SpendLedger
from gateway.events.rows import EventRows
from gateway.events.writer import EventWriter
from gateway.inbound import BodyReadGuard, bearer_token
from gateway.keys import ApiKey, KeyStore, hash_key
from gateway.keys.store import MISS
from gateway.levers.base import LeverSet
from gateway.limits import Limiter, build_store
from gateway.limits.sqlite_store import SqliteLimitStore
from gateway.metrics import GatewayMetrics
from gateway.providers import build_provider
from gateway.providers.base import Provider
from gateway.routing.dispatch import Dispatcher
from gateway.throttle import FailureThrottle, PendingLookups
from gateway.upstream import Transport, make_transport

__all__ = ["GatewayState"]

log = logging.getLogger("apex.gateway")
auth_log = logging.getLogger("apex.gateway.auth")


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
    metrics: GatewayMetrics = field(init=False)
    """Labelled with the configured model and provider names only (anything else is ``other``)."""
    auth_throttle: FailureThrottle = field(init=False)
    pending_lookups: PendingLookups = field(init=False)
    """Failed API-key authentications by client address (``authenticate``)."""
    started: float = field(default_factory=time.time)
    master_key: MasterKey | None = None
    cache: ExactCache | None = None
    limiter: Limiter | None = None
    levers: LeverSet = field(default_factory=LeverSet)
    """Built and started by the app once the state has started (``gateway.levers.registry.build_levers``)."""
    _budget_charges: Callable[[], list[tuple[str, str, str, float]]] | None = field(default=None, init=False)
    routes: dict[str, ModelRoute] = field(init=False)
    """Model name → route for chat calls: the configured models, plus names a lever answers for (the auto alias)."""
    body_reads: BodyReadGuard = field(init=False)
    """Ends request-body reads slower than ``gateway.body_read_timeout_s``."""

    def __post_init__(self) -> None:
        s = self.settings
        self.routes = {m.name: m for m in s.models}
        auto = s.optimizers.auto_routing
        self.metrics = GatewayMetrics(
            models=[*self.routes, *([auto.alias] if auto.enabled else [])],
            providers=[p.name for p in s.providers],
        )
        self.auth_throttle = FailureThrottle(s.gateway.auth_failures_per_s, s.gateway.auth_failure_burst)
        self.pending_lookups = PendingLookups()
        self.body_reads = BodyReadGuard(self.settings.gateway.body_read_timeout_s)

    async def start(self) -> None:
        s = self.settings
        self.master_key = MasterKey(s, self.metrics)
        # The writer thread builds each call's event row and feeds the metrics a drain of rows at a time. It is
        # built first: it replays the write-ahead log, which brings the spend counters up to the logged events
        # before the limit store loads them.
        rows = EventRows(self.prices, gateway_id=self.gateway_id, store_prompts=s.gateway.store_prompts)
        ev = s.events
        self.writer = await asyncio.to_thread(
            EventWriter,
            s.data.events_path,
            gateway_id=self.gateway_id,
            queue_size=ev.queue_size,
            flush_rows=ev.flush_rows,
            flush_seconds=ev.flush_seconds,
            drain_seconds=ev.wal_flush_ms / 1000,
            durability=ev.durability,
            wal_fsync=ev.wal_fsync,
            wal_fsync_seconds=ev.wal_fsync_ms / 1000,
            ledger=SpendLedger(s.data.gateway_db_path, s.data.events_path / "_wal"),
            prepare=rows.row,
            observe=self.metrics.observe_rows,
        )
        self.metrics.watch_writer(self.writer.snapshot)
        store = build_store(s)
        await store.start()
        self.limiter = Limiter(store, self.keys, self.prices, s.limits)
        # the SQLite backend's settled budget spend travels with the event (the Redis backend applies its own)
        self._budget_charges = store.take_charges if isinstance(store, SqliteLimitStore) else None
        exact = s.cache.exact
        self.cache = ExactCache(ttl_s=exact.ttl_s, max_entries=exact.max_entries, max_bytes=exact.max_bytes)
        self.transport = make_transport(s.gateway.upstream_transport)
        self.providers = {p.name: build_provider(p, self.transport) for p in s.providers}
        self.dispatcher = Dispatcher(s, self.providers, self.metrics)
        await self.dispatcher.start()
        # load the tokenizer now rather than on the first request that needs an estimate
        await asyncio.to_thread(count_text_tokens, "warm up")
        self._collector = asyncio.create_task(self._collect_garbage_forever())

    async def _collect_garbage_forever(self, every_s: float = 10.0) -> None:
        """A full cyclic-GC pass at a fixed pace. The server raises the gen-0 threshold (fewer, cheaper passes on
        the request path); without this, request-scoped cycles that outlive two young passes pile up in the old
        generation, whose automatic passes get rarer as it grows, and RSS climbs (seen in bench/soak.py)."""
        while True:
            await asyncio.sleep(every_s)
            gc.collect()

    async def stop(self) -> None:
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

    def cached_key(self, request: Request) -> ApiKey | None:
        """The caller's key when the in-memory key cache knows it: the request path's hot path (no I/O, no await).
        None when the key needs a database lookup: then ``await authenticate(request)``. Raises the 401 (or 429,
        for an address over its failed-authentication limit) that needs no lookup."""
        try:
            digest = hash_key(bearer_token(request))
        except AuthenticationError as err:
            raise self._auth_failed(request, "missing_key", err) from None
        found = self.keys.cached(digest)
        if found is MISS:
            return None
        if found is None:
            raise self._auth_failed(request, "invalid_key", _invalid_key())
        if found.expires_at is not None and time.time() >= found.expires_at:  # checked every call, cached or not
            raise self._auth_failed(request, "expired_key", _expired_key())
        return found

    async def authenticate(self, request: Request) -> ApiKey:
        """The caller's key, looked up in a thread when the cache does not know it (a flood of unknown keys must
        not block the event loop). Raises 401, or 429 with Retry-After for an address over its failed-auth limit
        (checked before the lookup: a throttled address costs no database work)."""
        key = self.cached_key(request)
        if key is not None:
            return key
        digest = hash_key(bearer_token(request))
        client = client_address(request)
        reserved = not self.keys.seen_valid(digest)  # a key once valid here is not held up by its address
        while reserved:
            wait = self.auth_throttle.take(client)
            if wait is None:
                break
            # the bucket is empty: refuse, unless this address's own lookups in flight hold the tokens (they come
            # back if those keys were valid): then wait for one to settle and look again
            if not await self.pending_lookups.wait_one(client):
                raise self._throttled(request, wait)
            reserved = not self.keys.seen_valid(digest)
        if reserved:
            self.pending_lookups.started(client)
        try:
            found = await asyncio.to_thread(self.keys.lookup, digest)
            key = self.keys.remember(digest, found)
        finally:
            if reserved:
                self.pending_lookups.settled(client)
        if key is None:
            raise self._auth_failed(request, "invalid_key", _invalid_key(), spent=reserved)
        if reserved:
            self.auth_throttle.refund(client)
        if key.expires_at is not None and time.time() >= key.expires_at:
            raise self._auth_failed(request, "expired_key", _expired_key())
        return key

    def _auth_failed(
        self, request: Request, reason: str, err: AuthenticationError, *, spent: bool = False
    ) -> ApexError:
        """Count and log a failed authentication (never the key: its last 4 characters at most, as ``apex keys
        list`` shows them) and charge it to the client address's bucket; the error to raise."""
        client = client_address(request)
        if not spent:
            wait = self.auth_throttle.take(client)
            if wait is not None:
                return self._throttled(request, wait)
        self.metrics.auth_failed[reason].inc()
        try:
            hint = "…" + bearer_token(request)[-4:]
        except AuthenticationError:
            hint = "none"
        auth_log.info("authentication failed (%s) from %s on %s, key %s", reason, client, request.url.path, hint)
        return err

    def _throttled(self, request: Request, wait: float) -> RateLimitError:
        self.metrics.auth_failed["throttled"].inc()
        # one line per refused burst would itself be a flood: debug only (the counter shows the volume)
        auth_log.debug("authentication throttled for %s", client_address(request))
        return RateLimitError(
            "Too many failed authentications from this address; retry after the Retry-After delay.",
            code="too_many_auth_failures",
            retry_after=wait,
        )

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
            # the spend goes to gateway.db with the event, through the write-ahead log (gateway.events.ledger)
            usd = priced.cost_usd if call.key is not None and priced is not None and priced.cost_usd else 0.0
            windows = self._budget_charges() if self._budget_charges is not None else []
            assert self.writer is not None
            if usd or windows:
                self.writer.record(call, (call.key.key_id if call.key else None, usd, windows))
            else:
                self.writer.record(call)
        except Exception:
            log.exception("could not record the event for request %s", call.request_id)


def _invalid_key() -> AuthenticationError:
    return AuthenticationError(
        "Incorrect API key provided. Create one with `apex keys create`.", code="invalid_api_key"
    )


def _expired_key() -> AuthenticationError:
    return AuthenticationError("This API key has expired.", code="key_expired")
