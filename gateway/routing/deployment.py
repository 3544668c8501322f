"""What the gateway knows about each deployment at run time: its breaker, latency, load and last error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contracts.settings import Deployment, ModelRoute, RoutingSettings
from gateway.routing.breaker import CircuitBreaker, CircuitState

__all__ = ["DeploymentState", "ModelGroup", "build_groups"]


@dataclass(eq=False)
class DeploymentState:
    id: str
    """``<model>/<provider>`` (``#<n>`` appended when a model has two deployments on one provider)."""
    model: str
    config: Deployment
    breaker: CircuitBreaker
    alpha: float
    ewma_latency_s: float | None = None
    in_flight: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    served: int = 0
    failed: int = 0

    @property
    def provider(self) -> str:
        return self.config.provider

    @property
    def target(self) -> str:
        return self.config.target

    @property
    def price_model(self) -> str:
        return self.config.price_model or self.config.target

    @property
    def weight(self) -> float:
        return self.config.weight

    def observe_latency(self, seconds: float) -> None:
        prev = self.ewma_latency_s
        self.ewma_latency_s = seconds if prev is None else self.alpha * seconds + (1 - self.alpha) * prev

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "provider": self.provider,
            "upstream_model": self.target,
            "region": self.config.region,
            "weight": self.weight,
            "state": self.breaker.state.name.lower(),
            "ewma_latency_ms": None if self.ewma_latency_s is None else round(self.ewma_latency_s * 1000, 3),
            "in_flight": self.in_flight,
            "recent_failures": self.breaker.recent_failures(),
            "served": self.served,
            "failed": self.failed,
            "last_error": self.last_error,
        }


@dataclass
class ModelGroup:
    route: ModelRoute
    settings: RoutingSettings
    deployments: list[DeploymentState] = field(default_factory=list)


def build_groups(
    models: tuple[ModelRoute, ...],
    defaults: RoutingSettings,
    clock: Callable[[], float],
    on_change: Callable[[str, CircuitState], None],
) -> dict[str, ModelGroup]:
    groups: dict[str, ModelGroup] = {}
    for route in models:
        settings = defaults.for_route(route)
        group = ModelGroup(route, settings)
        for i, dep in enumerate(route.group()):
            dep_id = f"{route.name}/{dep.provider}"
            if any(d.id == dep_id for d in group.deployments):
                dep_id = f"{dep_id}#{i}"
            breaker = CircuitBreaker(settings.breaker, clock, _notify(on_change, dep_id))
            group.deployments.append(DeploymentState(dep_id, route.name, dep, breaker, settings.latency_alpha))
        groups[route.name] = group
    return groups


def _notify(on_change: Callable[[str, CircuitState], None], dep_id: str) -> Callable[[CircuitState], None]:
    return lambda state: on_change(dep_id, state)
