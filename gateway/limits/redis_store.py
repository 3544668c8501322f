"""The shared limit backend: budgets and rate windows in Redis, so several gateway processes spend one budget.

Each check-and-hold, and each settle, is one Lua script: Redis runs a script to completion before any other
command, so two gateways cannot both see room for one call. Keys are ``<prefix>:budget:<scope>:<id>:<window>``
(hash: ``spent``, ``held``) and ``<prefix>:rate:<key_id>:<minute>`` (hash: ``req``, ``tok``); period windows
expire an hour after their period ends, rate windows after two minutes, ``total`` budgets never. If Redis cannot
be reached, calls are refused (503), never admitted unchecked. Not for Redis Cluster (a call's keys span slots).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.errors import ApexError
from gateway.limits.base import (
    RATE_WINDOW_S,
    AdmissionRequest,
    OpenReservations,
    Reservation,
    budget_exceeded,
    rate_exceeded,
)

__all__ = ["RedisLimitStore"]

log = logging.getLogger("apex.limits")

_EXPIRE_AFTER_PERIOD_S = 3600
"""Settles of calls admitted just before a period ended still land in that period's window."""

# KEYS[1] rate hash, KEYS[2..] budget hashes.
# ARGV: cost, tokens, rpm (0 = none), tpm (0 = none), rate ttl, then per budget hash: limit (-1 = none), ttl (0 = never)
_RESERVE = """
local cost = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local rpm = tonumber(ARGV[3])
local tpm = tonumber(ARGV[4])
local rate = redis.call('HMGET', KEYS[1], 'req', 'tok')
local req = tonumber(rate[1] or '0')
local tok = tonumber(rate[2] or '0')
if rpm > 0 and req + 1 > rpm then return {2, 0} end
if tpm > 0 and tok + tokens > tpm then return {3, 0} end
for i = 2, #KEYS do
  local limit = tonumber(ARGV[4 + 2 * (i - 1)])
  if limit >= 0 then
    local v = redis.call('HMGET', KEYS[i], 'spent', 'held')
    if tonumber(v[1] or '0') + tonumber(v[2] or '0') + cost > limit + 1e-12 then return {1, i - 1} end
  end
end
redis.call('HINCRBY', KEYS[1], 'req', 1)
redis.call('HINCRBY', KEYS[1], 'tok', tokens)
redis.call('EXPIRE', KEYS[1], ARGV[5])
for i = 2, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[i], 'held', ARGV[1])
  local ttl = tonumber(ARGV[5 + 2 * (i - 1)])
  if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
end
return {0, 0}
"""

# KEYS as above. ARGV: held cost, actual cost, token correction. A window that expired meanwhile is left alone.
_SETTLE = """
if tonumber(ARGV[3]) ~= 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'tok', ARGV[3])
end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HINCRBYFLOAT', KEYS[i], 'held', -tonumber(ARGV[1]))
    if tonumber(ARGV[2]) > 0 then redis.call('HINCRBYFLOAT', KEYS[i], 'spent', ARGV[2]) end
  end
end
return 0
"""


def _num(x: float) -> str:
    return repr(float(x))


class RedisLimitStore:
    def __init__(self, url: str, *, prefix: str = "apex", reservation_ttl_s: float = 3600.0) -> None:
        self.url = url
        self.prefix = prefix
        self._ttl = reservation_ttl_s
        self._open = OpenReservations()
        self._inflight: set[asyncio.Task[None]] = set()
        self._redis: Any = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(self.url)
        self._reserve = self._redis.register_script(_RESERVE)
        self._settle = self._redis.register_script(_SETTLE)
        await self._redis.ping()
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(30)
            for res in self._open.stale(self._ttl):
                log.warning("releasing a reservation of key %s never settled", res.key_id)
                self.release(res)

    def _keys(self, key_id: str, rate_window: int, res_budgets: Any) -> list[str]:
        keys = [f"{self.prefix}:rate:{key_id}:{rate_window}"]
        keys += [f"{self.prefix}:budget:{b.scope}:{b.scope_id}:{b.window}" for b in res_budgets]
        return keys

    async def reserve(self, req: AdmissionRequest) -> Reservation:
        args: list[str | int] = [_num(req.cost_usd), req.tokens, req.rpm or 0, req.tpm or 0, 2 * RATE_WINDOW_S]
        for line in req.budgets:
            ttl = 0 if line.resets_at is None else int(line.resets_at - req.now) + _EXPIRE_AFTER_PERIOD_S
            args += [_num(-1 if line.limit_usd is None else line.limit_usd), ttl]
        try:
            verdict, index = await self._reserve(keys=self._keys(req.key_id, req.rate_window, req.budgets), args=args)
        except Exception as exc:
            log.exception("redis limit store unreachable")
            err = ApexError(
                "Budgets cannot be checked right now (the limits store is unreachable); try again shortly.",
                code="limits_unavailable",
                retry_after=1.0,
            )
            err.status = 503
            raise err from exc
        if verdict == 1:
            raise budget_exceeded(req.budgets[int(index) - 1], req.cost_usd, req.now)
        if verdict == 2:
            raise rate_exceeded("requests", req.rpm or 0, req)
        if verdict == 3:
            tpm = req.tpm or 0
            raise rate_exceeded("tokens", tpm, req, fits=req.tokens <= tpm)
        res = Reservation(req.key_id, req.budgets, req.cost_usd, req.tokens, req.rate_window)
        self._open.add(res)
        return res

    def settle(self, res: Reservation, actual_usd: float, actual_tokens: int) -> None:
        if not self._open.close(res):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (interpreter shutdown): the hold expires with its window
            log.warning("could not settle a reservation of key %s: no event loop", res.key_id)
            return
        task = loop.create_task(self._apply(res, actual_usd, actual_tokens - res.tokens))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def release(self, res: Reservation) -> None:
        self.settle(res, 0.0, 0)

    async def _apply(self, res: Reservation, actual_usd: float, token_delta: int) -> None:
        keys = self._keys(res.key_id, res.rate_window, res.budgets)
        args = [_num(res.cost_usd), _num(actual_usd), token_delta]
        for attempt in range(3):
            try:
                await self._settle(keys=keys, args=args)
                return
            except Exception:
                if attempt == 2:
                    log.exception("could not settle a reservation of key %s in redis", res.key_id)
                    return
                await asyncio.sleep(0.2 * (attempt + 1))

    async def spent(self, scope: str, scope_id: str, window: str) -> float:
        """Settled spend in one window (for tests and the admin API)."""
        value = await self._redis.hget(f"{self.prefix}:budget:{scope}:{scope_id}:{window}", "spent")
        return float(value or 0.0)
