"""The exact cache as a lever: an identical request (same tenant, same answer-changing fields) is answered from
memory. Opt-in per key (``cache_enabled``) or per request (``x-apex-cache: on|off``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.cache.exact import CachedAnswer, ExactCache
from gateway.calls import CallRecord
from gateway.levers.base import LeverBase, Workers, answer_of

if TYPE_CHECKING:
    from gateway.state import GatewayState

__all__ = ["ExactCacheLever"]


class ExactCacheLever(LeverBase):
    name = "exact_cache"

    def __init__(self, cache: ExactCache) -> None:
        self.cache = cache

    @classmethod
    def build(cls, state: GatewayState, workers: Workers) -> ExactCacheLever:
        assert state.cache is not None, "the gateway starts before its levers are built"
        return cls(state.cache)

    def applies(self, call: CallRecord) -> bool:
        mode = call.hints.exact_cache
        if mode == "off":
            return False
        return mode == "on" or bool(getattr(call.key, "cache_enabled", False))

    async def before_dispatch(self, call: CallRecord) -> CachedAnswer | None:
        assert call.key is not None and call.body is not None
        call.cache_key = self.cache.key_for(call.key.customer_id, call.body)
        hit = self.cache.get(call.cache_key)
        if hit is None:
            call.cache_status = "miss"
            call.store_answer = True
            return None
        call.cache_status = "hit_exact"
        return hit

    def after(self, call: CallRecord, result: bytes) -> None:
        if call.cache_status == "miss" and call.cache_key:
            self.cache.put(call.cache_key, answer_of(call, result))
