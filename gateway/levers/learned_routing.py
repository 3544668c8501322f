"""Learned routing as a lever: for calls that opt in (model ``auto_routing.alias``, or a ``--auto-route`` key asking
for the strong model), the policy picks the strong or the cheap model; the strong one is the savings baseline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from contracts.settings import ModelRoute
from gateway.cache.exact import CachedAnswer
from gateway.calls import CallRecord
from gateway.hints import Hints
from gateway.levers.base import LeverBase, Workers, text_of
from gateway.levers.policy_file import PolicyHolder

if TYPE_CHECKING:
    from gateway.state import GatewayState
    from optimizers.routing import RoutingDecision

__all__ = ["LearnedRoutingLever", "routing_text"]

log = logging.getLogger("apex.gateway")


def routing_text(messages: list[Any]) -> str:
    """What the router reads: the last user turn (the question being asked), else all text."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = text_of(message.get("content"))
            if text:
                return text
    return "\n".join(t for m in messages if isinstance(m, dict) and (t := text_of(m.get("content"))))


class LearnedRoutingLever(LeverBase):
    name = "learned_routing"

    def __init__(self, state: GatewayState, workers: Workers) -> None:
        auto = state.settings.optimizers.auto_routing
        self.enabled = auto.enabled
        self.workers = workers
        self.policy = PolicyHolder(state.settings.routing_policy_path)
        self.reload_seconds = auto.reload_seconds
        self._reloader: asyncio.Task[None] | None = None
        self.alias = auto.alias
        self.strong: ModelRoute | None = None
        self.weak: ModelRoute | None = None
        if self.enabled:
            assert auto.strong_model is not None and auto.weak_model is not None
            self.strong, self.weak = state.settings.route(auto.strong_model), state.settings.route(auto.weak_model)
            assert self.strong is not None and self.weak is not None  # checked when the settings loaded
            # the alias is admitted, cached and compressed as the strong model until the policy decides
            state.routes[self.alias] = self.strong

    @classmethod
    def build(cls, state: GatewayState, workers: Workers) -> LearnedRoutingLever:
        return cls(state, workers)

    def applies(self, call: CallRecord) -> bool:
        model = call.requested_model
        assert self.strong is not None
        return model == self.alias or (model == self.strong.name and call.key is not None and call.key.auto_route)

    async def before_dispatch(self, call: CallRecord) -> CachedAnswer | None:
        assert self.strong is not None and self.weak is not None
        call.baseline_price_model = self.strong.baseline_price_model
        decision = await self.workers.run(self._decide, routing_text(call.messages), call.hints)
        if decision is None:
            call.routing_decision = "auto: strong (no routing policy loaded yet)"
            call.route = self.strong
            return None
        call.auto_routed = True
        call.policy_version = decision.policy_version
        call.routing_decision = f"auto: {decision.tier} ({decision.reason})"
        call.route = self.weak if decision.tier == "weak" else self.strong
        return None

    def _decide(self, text: str, hints: Hints) -> RoutingDecision | None:
        policy = self.policy.policy
        if policy is None:
            return None
        return policy.decide(text, quality_target=hints.quality_target, urgency=hints.urgency)

    async def start(self) -> None:
        if self.enabled:
            await self.workers.run(self.policy.refresh)
            self._reloader = asyncio.create_task(self._reload_forever())

    async def stop(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(self.reload_seconds)
            try:
                await self.workers.run(self.policy.refresh)
            except Exception:  # pragma: no cover - never let the reloader die
                log.exception("routing policy reload failed")

    def stats(self) -> dict[str, Any]:
        return {"routing_policy": self.policy.version, "routing_policy_error": self.policy.error}
