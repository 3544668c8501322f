"""Routing policies: pick one deployment of a model group among those that may take a call.

``weighted`` draws at random in proportion to the configured weights. ``latency`` sends most calls to the
deployment with the lowest latency EWMA (unmeasured ones first, so each gets measured) and a ``latency_explore``
share to a weighted draw, so a deployment that was slow once gets a chance to show it has recovered.
New policies register with ``register_policy`` the way the built-in ones do.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.config import RoutingSettings
from gateway.routing.deployment import DeploymentState

__all__ = ["LatencyPolicy", "RoutingPolicy", "WeightedPolicy", "make_policy", "register_policy"]


class RoutingPolicy(Protocol):
    def choose(self, candidates: Sequence[DeploymentState], rng: random.Random) -> DeploymentState: ...


class WeightedPolicy:
    def choose(self, candidates: Sequence[DeploymentState], rng: random.Random) -> DeploymentState:
        if len(candidates) == 1:
            return candidates[0]
        return rng.choices(list(candidates), weights=[c.weight for c in candidates])[0]


class LatencyPolicy:
    def __init__(self, explore: float) -> None:
        self.explore = explore
        self._weighted = WeightedPolicy()

    def choose(self, candidates: Sequence[DeploymentState], rng: random.Random) -> DeploymentState:
        if len(candidates) > 1 and rng.random() < self.explore:
            return self._weighted.choose(candidates, rng)
        return min(candidates, key=lambda c: c.ewma_latency_s if c.ewma_latency_s is not None else 0.0)


PolicyFactory = Callable[[RoutingSettings], RoutingPolicy]
_POLICIES: dict[str, PolicyFactory] = {}


def register_policy(name: str, factory: PolicyFactory) -> None:
    _POLICIES[name] = factory


register_policy("weighted", lambda _s: WeightedPolicy())
register_policy("latency", lambda s: LatencyPolicy(s.latency_explore))


def make_policy(settings: RoutingSettings) -> RoutingPolicy:
    return _POLICIES[settings.strategy](settings)
