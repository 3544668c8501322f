"""Balancing strategies: pick one deployment of a model group among those that may take a call.

``weighted`` draws at random in proportion to the configured weights. ``latency`` sends most calls to the
deployment with the lowest latency EWMA (unmeasured ones first, so each gets measured) and a ``latency_explore``
share to a weighted draw, so a deployment that was slow once gets a chance to show it has recovered.
New strategies register with ``register_strategy`` the way the built-in ones do (the learned
``optimizers.routing.RoutingPolicy`` is another thing: it picks a model, not a deployment).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol

from contracts.settings import RoutingSettings
from gateway.routing.deployment import DeploymentState

__all__ = ["LatencyStrategy", "BalancingStrategy", "WeightedStrategy", "make_strategy", "register_strategy"]


class BalancingStrategy(Protocol):
    def choose(self, candidates: Sequence[DeploymentState], rng: random.Random) -> DeploymentState: ...


class WeightedStrategy:
    def choose(self, candidates: Sequence[DeploymentState], rng: random.Random) -> DeploymentState:
        if len(candidates) == 1:
            return candidates[0]
        return rng.choices(list(candidates), weights=[c.weight for c in candidates])[0]


class LatencyStrategy:
    def __init__(self, explore: float) -> None:
        self.explore = explore
        self._weighted = WeightedStrategy()

    def choose(self, candidates: Sequence[DeploymentState], rng: random.Random) -> DeploymentState:
        if len(candidates) > 1 and rng.random() < self.explore:
            return self._weighted.choose(candidates, rng)
        return min(candidates, key=lambda c: c.ewma_latency_s if c.ewma_latency_s is not None else 0.0)


StrategyFactory = Callable[[RoutingSettings], BalancingStrategy]
_STRATEGIES: dict[str, StrategyFactory] = {}


def register_strategy(name: str, factory: StrategyFactory) -> None:
    _STRATEGIES[name] = factory


register_strategy("weighted", lambda _s: WeightedStrategy())
register_strategy("latency", lambda s: LatencyStrategy(s.latency_explore))


def make_strategy(settings: RoutingSettings) -> BalancingStrategy:
    return _STRATEGIES[settings.strategy](settings)
