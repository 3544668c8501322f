"""What a client asks of the optimizer levers in one request: headers ``x-apex-*`` (or ``metadata`` fields)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidRequestError

__all__ = ["NO_HINTS", "SEMANTIC_MODES", "URGENCIES", "Hints"]

SEMANTIC_MODES = ("on", "shadow", "off")
URGENCIES = ("high", "normal", "low")


@dataclass(frozen=True, slots=True)
class Hints:
    """What the client asked of the optimizers in this request's headers (``None`` = not said)."""

    exact_cache: str | None = None
    semantic_cache: str | None = None
    compress: bool | None = None
    urgency: str | None = None
    quality_target: float | None = None

    @classmethod
    def from_request(cls, headers: Mapping[str, str] | None, body: Mapping[str, Any]) -> Hints:
        headers = headers or {}
        raw_meta = body.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        if not meta and not any(name in headers for name in _HINT_HEADERS):
            return NO_HINTS  # the common case: nothing asked, nothing to validate
        semantic = headers.get("x-apex-semantic-cache")
        if semantic is not None and semantic not in SEMANTIC_MODES:
            raise InvalidRequestError(
                f"x-apex-semantic-cache must be one of {', '.join(SEMANTIC_MODES)}, not {semantic!r}.",
                param="x-apex-semantic-cache",
                code="invalid_header",
            )
        compress = headers.get("x-apex-compress")
        if compress is not None and compress not in ("on", "off"):
            raise InvalidRequestError(
                f"x-apex-compress must be on or off, not {compress!r}.", param="x-apex-compress", code="invalid_header"
            )
        urgency = headers.get("x-apex-urgency") or meta.get("urgency")
        if urgency is not None and urgency not in URGENCIES:
            raise InvalidRequestError(
                f"urgency must be one of {', '.join(URGENCIES)}, not {urgency!r}.",
                param="urgency",
                code="invalid_value",
            )
        return cls(
            exact_cache=headers.get("x-apex-cache"),
            semantic_cache=semantic,
            compress=None if compress is None else compress == "on",
            urgency=urgency,
            quality_target=_quality_target(headers.get("x-apex-quality-target") or meta.get("quality_target")),
        )


_HINT_HEADERS = (
    "x-apex-cache",
    "x-apex-semantic-cache",
    "x-apex-compress",
    "x-apex-urgency",
    "x-apex-quality-target",
)
NO_HINTS = Hints()


def _quality_target(raw: Any) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise InvalidRequestError(
            f"quality_target must be a number in (0, 1], not {raw!r}.", param="quality_target", code="invalid_value"
        )
    return value
