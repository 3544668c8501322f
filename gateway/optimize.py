"""The optimizer levers on the request path, in the design's order: exact cache (``chat``) → semantic cache →
compression → learned routing.

The levers themselves are pure libraries in ``optimizers/``; this module decides per call whether each applies
(request header > key setting > model setting), feeds them, and records on the ``CallRecord`` what each did, so
the event carries the claim and its evidence. Anything slow (embedding, vector search, verification, loading a
policy) runs on a small thread pool, never on the event loop; the libraries load lazily, so a gateway whose
users opt into nothing pays nothing.

Opt-in, per request (headers) or per key (``apex keys create|update``) or per model (``models[].optimize``):

=========================  =====================================  =============================================
lever                      request header                         key / model setting
=========================  =====================================  =============================================
semantic cache             ``x-apex-semantic-cache: on|shadow|off``  ``--semantic-cache`` / ``optimize.semantic_cache``
compression                ``x-apex-compress: on|off``            ``--compress`` / ``optimize.compression``
learned routing            model ``apex/auto`` (the alias)        ``--auto-route`` (requests for the strong model)
routing hint               ``x-apex-urgency: high|normal|low``, ``x-apex-quality-target: 0.95`` (or ``metadata``)
=========================  =====================================  =============================================
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from gateway.cache.exact import NOT_IN_KEY
from gateway.calls import CallRecord
from gateway.config import ModelRoute, Settings
from gateway.errors import InvalidRequestError

if TYPE_CHECKING:
    from optimizers.routing import RoutingDecision, RoutingPolicy
    from optimizers.semantic_cache import CacheMatch, SemanticCache

__all__ = ["Hints", "Optimizers", "PolicyHolder", "semantic_key"]

log = logging.getLogger("apex.gateway")
T = TypeVar("T")

SEMANTIC_MODES = ("on", "shadow", "off")
URGENCIES = ("high", "normal", "low")
# The semantic cache compares messages itself; every other field that can change the answer scopes its entries
# (the exact cache's rule: list what to drop, so a parameter added next year is in the scope too).
_NOT_IN_SCOPE = NOT_IN_KEY | {"messages", "model"}


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
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        if not meta and not any(name in headers for name in _HINT_HEADERS):
            return _NO_HINTS  # the common case: nothing asked, nothing to validate
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
_NO_HINTS = Hints()


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


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) == len(content) and all(isinstance(p, str) for p in parts):
            return "\n".join(parts)  # type: ignore[arg-type]
    return None  # images, audio, files: not something a text embedding can vouch for


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def semantic_key(
    tenant: str, model: str, body: Mapping[str, Any], messages: list[Any], *, multi_turn: bool, include_sampled: bool
) -> tuple[str, str] | str:
    """``(scope, text)`` for a call the semantic cache may answer, or why it may not (the bypass reason).

    The scope holds everything besides the last user turn that changes the answer — tenant, model, system
    prompt, tools, sampling parameters and (multi-turn only) the earlier turns — so entries only ever match
    within it; the text is the last user turn, which is what gets embedded and compared."""
    temperature = body.get("temperature")
    if not include_sampled and isinstance(temperature, int | float) and temperature > 0:
        return "sampled: temperature > 0 (set cache.semantic.include_sampled to allow)"
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "user":
        return "last message is not a user turn"
    text = _text_of(last.get("content"))
    if not text or not text.strip():
        return "last user turn has no text"
    system = [m for m in messages[:-1] if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    earlier = [m for m in messages[:-1] if isinstance(m, dict) and m.get("role") not in ("system", "developer")]
    if earlier and not multi_turn:
        return "multi-turn conversation (set cache.semantic.multi_turn to allow)"
    scope = {
        "tenant": tenant,
        "model": model,
        "system": system,
        "earlier": earlier,
        "params": {k: v for k, v in body.items() if k not in _NOT_IN_SCOPE},
    }
    return _digest(scope), text


def routing_text(messages: list[Any]) -> str:
    """What the router reads: the last user turn (the question being asked), else all text."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _text_of(message.get("content"))
            if text:
                return text
    return "\n".join(t for m in messages if isinstance(m, dict) and (t := _text_of(m.get("content"))))


def _freeze_imports() -> None:
    """Move what a lazy import just created (lancedb alone makes ~120k objects) out of the collector's way, as the
    server does at start-up: otherwise every periodic full collection walks them (45-90 ms pauses)."""
    gc.collect()
    gc.freeze()


class PolicyHolder:
    """The routing policy file, reloaded when it changes (checked every ``reload_seconds``; no restart).

    A file that fails to load keeps the previous policy in force and says why in ``error``; with no policy at
    all, auto-routed calls go to the strong model (the safe choice) and say so."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.policy: RoutingPolicy | None = None
        self.error: str | None = None
        self._stamp: tuple[int, int] | None = None

    def refresh(self) -> bool:
        """Load the file if it changed since the last look; True when a new policy took effect."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            from optimizers.routing import RoutingPolicy

            policy = RoutingPolicy.load(self.path)
            _freeze_imports()
        except Exception as exc:  # any bad file: keep serving with the last good policy
            self.error = f"{self.path}: {exc}"
            log.error("routing policy not loaded, keeping %s: %s", self.version or "no policy", self.error)
            return False
        self.policy, self.error = policy, None
        log.info("routing policy %s loaded from %s", policy.policy_version, self.path)
        return True

    @property
    def version(self) -> str | None:
        return self.policy.policy_version if self.policy is not None else None


class Optimizers:
    """Per-gateway state of the levers: the semantic cache, the routing policy and the worker threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="apex-optimizers")
        self._semantic: SemanticCache | None = None
        self._semantic_lock = threading.Lock()
        self.policy = PolicyHolder(settings.routing_policy_path)
        self._reloader: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings.optimizers.auto_routing.enabled:
            await self.run(self.policy.refresh)
            self._reloader = asyncio.create_task(self._reload_forever())

    async def stop(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
        if self._semantic is not None:
            with contextlib.suppress(Exception):
                self._semantic.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _reload_forever(self) -> None:
        every = self.settings.optimizers.auto_routing.reload_seconds
        while True:
            await asyncio.sleep(every)
            try:
                await self.run(self.policy.refresh)
            except Exception:  # pragma: no cover - never let the reloader die
                log.exception("routing policy reload failed")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- which levers apply -------------------------------------------------------------------------------------

    @staticmethod
    def semantic_mode(call: CallRecord, route: ModelRoute, hints: Hints) -> str:
        key_mode = call.key.semantic_cache if call.key is not None else None
        return hints.semantic_cache or key_mode or route.optimize.semantic_cache or "off"

    @staticmethod
    def compression_wanted(call: CallRecord, route: ModelRoute, hints: Hints) -> bool:
        for choice in (hints.compress, call.key.compression if call.key else None, route.optimize.compression):
            if choice is not None:
                return choice
        return False

    def auto_route_for(self, call: CallRecord, model: str) -> tuple[ModelRoute, ModelRoute] | None:
        """``(strong, weak)`` routes when learned routing decides this call, else None."""
        auto = self.settings.optimizers.auto_routing
        if not auto.enabled:
            return None
        assert auto.strong_model is not None and auto.weak_model is not None
        opted = model == auto.alias or (model == auto.strong_model and call.key is not None and call.key.auto_route)
        if not opted:
            return None
        strong, weak = self.settings.route(auto.strong_model), self.settings.route(auto.weak_model)
        assert strong is not None and weak is not None  # checked when the settings loaded
        return strong, weak

    # -- semantic cache -----------------------------------------------------------------------------------------

    def _cache(self, dimension: int | None = None) -> SemanticCache:
        """The cache (opened on first use). With ``cache.semantic.embedding_model`` the vectors come from the
        provider, so the first one sets the dimension, and the entries get their own directory."""
        if self._semantic is None:
            with self._semantic_lock:
                if self._semantic is None:
                    from optimizers.semantic_cache import SemanticCache

                    s = self.settings.cache.semantic
                    options: dict[str, Any] = {"ttl_s": s.ttl_s, "max_entries": s.max_entries}
                    if s.similarity_threshold is not None:
                        options["similarity_threshold"] = s.similarity_threshold
                    if s.verify_threshold is not None:
                        options["verify_threshold"] = s.verify_threshold
                    path = self.settings.semantic_cache_dir
                    if s.embedding_model is not None:
                        assert dimension is not None, "provider embeddings: the vector comes first"
                        options["dimension"] = dimension
                        path = path / ("provider-" + re.sub(r"[^A-Za-z0-9._-]+", "_", s.embedding_model))
                    self._semantic = SemanticCache(path, **options)
                    _freeze_imports()
        return self._semantic

    def _lookup(self, scope: str, text: str, vector: Any) -> tuple[CacheMatch | None, Any]:
        if vector is None:
            cache = self._cache()
            vector = cache.embed(text)
        else:
            cache = self._cache(len(vector))
        return cache.lookup(scope, text, vector=vector), vector

    async def semantic_lookup(self, scope: str, text: str, vector: Any = None) -> tuple[CacheMatch | None, Any]:
        """The best match for ``text`` and the vector it was looked up with (embedded here with the bundled model
        unless ``vector`` came from the configured provider model)."""
        return await self.run(self._lookup, scope, text, vector)

    def semantic_store(self, scope: str, text: str, payload: bytes, vector: Any) -> None:
        """Insert in the background: the client already has its answer and must not wait for the write."""

        def insert() -> None:
            try:
                self._cache(len(vector)).insert(scope, text, payload, vector=vector)
            except Exception:
                log.exception("semantic cache insert failed (the answer was served; only the entry is lost)")

        self._pool.submit(insert)

    # -- learned routing ----------------------------------------------------------------------------------------

    def _decide(self, text: str, hints: Hints) -> RoutingDecision | None:
        policy = self.policy.policy
        if policy is None:
            return None
        return policy.decide(text, quality_target=hints.quality_target, urgency=hints.urgency)

    async def decide(self, text: str, hints: Hints) -> RoutingDecision | None:
        return await self.run(self._decide, text, hints)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"routing_policy": self.policy.version, "routing_policy_error": self.policy.error}
        if self._semantic is not None:
            out["semantic_cache_entries"] = len(self._semantic)
        return out
