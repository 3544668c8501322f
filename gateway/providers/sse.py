"""Reading a server-sent-events body from an upstream: the JSON of each ``data:`` line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.errors import UpstreamError

__all__ = ["sse_json"]


async def sse_json(provider: str, lines: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    """Yield each ``data:`` payload parsed as a JSON object; ``event:`` lines are redundant with its ``type``."""
    async for line in lines:
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if not payload or payload == b"[DONE]":
            continue
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"provider {provider!r} sent a stream event that is not JSON", code="upstream_bad_response"
            ) from None
        if isinstance(data, dict):
            yield data
