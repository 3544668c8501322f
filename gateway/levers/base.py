"""The lever interface, the set of levers a gateway runs, and the worker threads they share.

A call meets the active levers in registration order, after admission and before dispatch::

    applies(call) -> bool          cheap and synchronous: does this lever act on this call at all?
    before_dispatch(call)          may answer the call (a cache hit: returns the ``CachedAnswer``, setting
                                   ``call.cache_status``), or change ``call.body`` / ``call.route`` (compression,
                                   routing); returns None to let the call go on
    after(call, result)            the finished answer's canonical body, once it is whole and a 200; called on every
                                   active lever, only when one of them set ``call.store_answer`` (a miss to fill)

A new lever is one module with a class like the built-ins and one ``register_lever`` call.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from gateway.cache.exact import CachedAnswer
from gateway.calls import CallRecord

__all__ = ["Lever", "LeverBase", "LeverSet", "Workers", "answer_of", "freeze_imports", "text_of"]

T = TypeVar("T")


class Lever(Protocol):
    name: str
    enabled: bool
    """Fixed at start from the settings; a disabled lever is not in the request path's loop at all."""

    def applies(self, call: CallRecord) -> bool: ...

    async def before_dispatch(self, call: CallRecord) -> CachedAnswer | None: ...

    def after(self, call: CallRecord, result: bytes) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...


class LeverBase:
    """No-op defaults for the hooks a lever does not need."""

    name = "lever"
    enabled = True

    def after(self, call: CallRecord, result: bytes) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {}


def freeze_imports() -> None:
    """Move what a lazy import just created (lancedb alone makes ~120k objects) out of the collector's way, as the
    server does at start-up: otherwise every periodic full collection walks them (45-90 ms pauses)."""
    gc.collect()
    gc.freeze()


class Workers:
    """The levers' worker threads (embedding, vector search, policy inference stay off the event loop)."""

    def __init__(self, max_workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="apex-optimizers")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def submit(self, fn: Callable[[], None]) -> None:
        self._pool.submit(fn)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class LeverSet:
    """A gateway's levers: ``active`` is what the request path loops over, in registration order."""

    def __init__(self, levers: Sequence[Lever] = (), workers: Workers | None = None) -> None:
        self.all = tuple(levers)
        self.active = tuple(lever for lever in self.all if lever.enabled)
        self.workers = workers

    def after(self, call: CallRecord, result: bytes) -> None:
        """Hand a finished answer to the levers that asked for it (``call.store_answer``)."""
        if call.http_status != 200:
            return
        for lever in self.active:
            lever.after(call, result)

    async def start(self) -> None:
        for lever in self.all:
            await lever.start()

    async def stop(self) -> None:
        for lever in self.all:
            await lever.stop()
        if self.workers is not None:
            self.workers.close()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for lever in self.all:
            out.update(lever.stats())
        return out


def answer_of(call: CallRecord, result: bytes) -> CachedAnswer:
    """The finished answer as a cache stores it: its tokens are what a later hit will have saved."""
    return CachedAnswer(result, call.usage, call.served_model or "", call.finish_reason, time.time(), call.is_simulated)


def text_of(content: Any) -> str | None:
    """A message's text, or None if it holds more than text (images, audio, files: not for a text embedding)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) == len(content) and all(isinstance(p, str) for p in parts):
            return "\n".join(parts)  # type: ignore[arg-type]
    return None
