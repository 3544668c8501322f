"""Prompt compression as a lever: the messages sent upstream are compressed when the quality check allows it.
Per request (``x-apex-compress``), per key, or per model (``optimize.compression``), first one that says."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.cache.exact import CachedAnswer
from gateway.calls import CallRecord
from gateway.levers.base import LeverBase, Workers

if TYPE_CHECKING:
    from gateway.state import GatewayState

__all__ = ["CompressionLever"]


class CompressionLever(LeverBase):
    name = "compression"

    def __init__(self, min_quality: float) -> None:
        self.min_quality = min_quality

    @classmethod
    def build(cls, state: GatewayState, workers: Workers) -> CompressionLever:
        return cls(state.settings.optimizers.compression.min_quality)

    def applies(self, call: CallRecord) -> bool:
        assert call.route is not None
        for choice in (
            call.hints.compress,
            call.key.compression if call.key else None,
            call.route.optimize.compression,
        ):
            if choice is not None:
                return choice
        return False

    async def before_dispatch(self, call: CallRecord) -> CachedAnswer | None:
        from optimizers.compression import compress_messages  # noqa: PLC0415 - only gateways that compress load it

        assert call.route is not None and call.body is not None
        result = compress_messages(call.messages, call.route.baseline_price_model, min_quality=self.min_quality)
        if result.status == "fallback":
            call.compression_status = f"fallback: {result.fallback_reason}"
            call.compression_tokens_saved = 0
            return None
        call.compression_status = result.status
        call.compression_tokens_saved = result.tokens_saved
        if result.status == "compressed":
            call.upstream_messages = result.messages
            call.body = {**call.body, "messages": result.messages}
        return None
