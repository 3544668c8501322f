"""The lever registry: ``register_lever(name, factory)``; built-ins register here the way a third-party one would,
and the order of registration is the order a call meets them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.levers.base import Lever, LeverSet, Workers
from gateway.levers.compression import CompressionLever
from gateway.levers.exact_cache import ExactCacheLever
from gateway.levers.learned_routing import LearnedRoutingLever
from gateway.levers.semantic_cache import SemanticCacheLever

if TYPE_CHECKING:
    from gateway.state import GatewayState

__all__ = ["build_levers", "lever_names", "register_lever"]

LeverFactory = Callable[["GatewayState", Workers], Lever]
_LEVERS: dict[str, LeverFactory] = {}


def register_lever(name: str, factory: LeverFactory) -> None:
    """Add a lever (after those registered before it); ``factory(state, workers)`` builds it at gateway start."""
    _LEVERS[name] = factory


def lever_names() -> tuple[str, ...]:
    return tuple(_LEVERS)


def build_levers(state: GatewayState) -> LeverSet:
    """Every registered lever, built for a started gateway."""
    workers = Workers()
    return LeverSet([factory(state, workers) for factory in _LEVERS.values()], workers)


register_lever("exact_cache", ExactCacheLever.build)
register_lever("semantic_cache", SemanticCacheLever.build)
register_lever("compression", CompressionLever.build)
register_lever("learned_routing", LearnedRoutingLever.build)
