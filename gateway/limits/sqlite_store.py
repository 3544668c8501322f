"""The embedded limit backend: authoritative counters in this process's memory, persisted to SQLite behind.

Admission never touches the disk. Every counter (spend and holds per budget window, requests and tokens per rate
window) lives in dicts guarded by one lock, and ``reserve`` checks and holds under that lock without awaiting, so
no two calls can both see room for one. Settled spend is persisted with the call's event: ``settle`` leaves the
windows it charged for ``take_charges``, the gateway hands them to the event writer with the event, and the writer
commits them to the ``period_spend`` table from its write-ahead log exactly once (``gateway.events.ledger``), so
after a crash the counters match the events. At start the current windows' spend is loaded back (after the log's
replay), so a restart keeps the budget spent. One gateway process per database: two processes on one file would
each trust their own memory (use the ``redis`` backend to share a budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path

from gateway.limits.base import (
    AdmissionRequest,
    OpenReservations,
    Reservation,
    budget_exceeded,
    rate_exceeded,
)
from gateway.limits.periods import PERIODS, current_window

__all__ = ["SqliteLimitStore"]

log = logging.getLogger("apex.limits")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS period_spend (
    scope          TEXT NOT NULL,
    scope_id       TEXT NOT NULL,
    period_window  TEXT NOT NULL,
    spent_usd      REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, scope_id, period_window)
);
"""

_Slot = tuple[str, str, str]  # (scope, scope_id, window)


def _current_windows(now: float) -> set[str]:
    return {current_window(p, now)[0] for p in PERIODS}


class SqliteLimitStore:
    def __init__(self, db_path: Path, *, reservation_ttl_s: float = 3600.0, sweep_seconds: float = 1.0) -> None:
        self.db_path = Path(db_path)
        self._ttl = reservation_ttl_s
        self._sweep_seconds = sweep_seconds
        self._lock = threading.Lock()
        self._spent: dict[_Slot, float] = {}
        self._held: dict[_Slot, float] = {}
        self._charges: list[tuple[str, str, str, float]] = []  # settled spend not yet handed to the event writer
        self._rates: dict[str, list[int]] = {}  # key_id -> [window, requests, tokens]
        self._open = OpenReservations()
        self._task: asyncio.Task[None] | None = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def load(self, now: float) -> None:
        """Read the spend of every window current at ``now``; windows that start later begin at zero."""
        windows = _current_windows(now)
        with contextlib.closing(self._connect()) as db:
            db.executescript(_SCHEMA)
            rows = db.execute("SELECT scope, scope_id, period_window, spent_usd FROM period_spend").fetchall()
        with self._lock:
            for scope, scope_id, window, spent in rows:
                if window in windows:
                    self._spent[(scope, scope_id, window)] = spent

    async def start(self) -> None:
        await asyncio.to_thread(self.load, time.time())
        self._task = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_seconds)
            for res in self._open.stale(self._ttl):
                log.warning("releasing a reservation of key %s never settled", res.key_id)
                self.release(res)

    def take_charges(self) -> list[tuple[str, str, str, float]]:
        """The (scope, scope_id, window, usd) charges settled since the last call, for the event that carries them.
        The gateway calls it right after settling a call, with no await between: they are that call's."""
        if not self._charges:
            return []
        with self._lock:
            charges, self._charges = self._charges, []
        return charges

    # -- the request path: all in memory ----------------------------------------------------------------------

    async def reserve(self, req: AdmissionRequest) -> Reservation:
        window = req.rate_window
        with self._lock:
            rate = self._rates.get(req.key_id)
            if rate is None or rate[0] != window:
                rate = [window, 0, 0]
            if req.rpm is not None and rate[1] + 1 > req.rpm:
                raise rate_exceeded("requests", req.rpm, req)
            if req.tpm is not None and rate[2] + req.tokens > req.tpm:
                raise rate_exceeded("tokens", req.tpm, req, fits=req.tokens <= req.tpm)
            for line in req.budgets:
                if line.limit_usd is None:
                    continue
                slot = (line.scope, line.scope_id, line.window)
                if self._spent.get(slot, 0.0) + self._held.get(slot, 0.0) + req.cost_usd > line.limit_usd + 1e-12:
                    raise budget_exceeded(line, req.cost_usd, req.now)
            # every check passed: hold, still under the same lock
            rate[1] += 1
            rate[2] += req.tokens
            self._rates[req.key_id] = rate
            for line in req.budgets:
                slot = (line.scope, line.scope_id, line.window)
                self._held[slot] = self._held.get(slot, 0.0) + req.cost_usd
            res = Reservation(req.key_id, req.budgets, req.cost_usd, req.tokens, window)
            self._open.add(res)
            return res

    def settle(self, res: Reservation, actual_usd: float, actual_tokens: int) -> None:
        with self._lock:
            if not self._open.close(res):
                return
            for line in res.budgets:
                slot = (line.scope, line.scope_id, line.window)
                held = self._held.get(slot, 0.0) - res.cost_usd
                if held > 1e-12:
                    self._held[slot] = held
                else:
                    self._held.pop(slot, None)
                if actual_usd > 0:
                    self._spent[slot] = self._spent.get(slot, 0.0) + actual_usd
                    self._charges.append((*slot, actual_usd))
            rate = self._rates.get(res.key_id)
            if rate is not None and rate[0] == res.rate_window:
                rate[2] = max(rate[2] + actual_tokens - res.tokens, 0)

    def release(self, res: Reservation) -> None:
        self.settle(res, 0.0, 0)

    def spent(self, scope: str, scope_id: str, window: str) -> float:
        """Settled spend in one window (for tests and the admin API)."""
        with self._lock:
            return self._spent.get((scope, scope_id, window), 0.0)
