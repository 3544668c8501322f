"""The semantic cache as a lever: a paraphrase of an answered question gets the stored answer, once verified.

Modes per request (``x-apex-semantic-cache``), per key or per model: ``on`` serves verified matches, ``shadow``
only records what would have been a hit, ``off``. Vectors come from the bundled embedding model, or with
``cache.semantic.embedding_model`` from a provider through Apex's own embeddings path (its own priced event).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any

import orjson

from contracts.settings import Settings
from gateway.cache.exact import CachedAnswer
from gateway.calls import CallRecord
from gateway.embed import ENDPOINT as EMBEDDINGS_ENDPOINT
from gateway.embed import embed_call
from gateway.errors import ApexError, UpstreamError
from gateway.levers.base import LeverBase, Workers, answer_of, freeze_imports
from gateway.levers.semantic_scope import semantic_key
from gateway.providers.base import Usage

if TYPE_CHECKING:
    from gateway.state import GatewayState
    from optimizers.semantic_cache import CacheMatch, SemanticCache

__all__ = ["SemanticCacheLever"]

log = logging.getLogger("apex.gateway")


def _answer_bytes(answer: CachedAnswer) -> bytes:
    u = answer.usage
    return orjson.dumps(
        {
            "body": answer.body.decode(),
            "usage": [u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens] if u else None,
            "model": answer.model,
            "finish_reason": answer.finish_reason,
            "stored_at": answer.stored_at,
            "simulated": answer.simulated,
        }
    )


def _answer_from_bytes(raw: bytes) -> CachedAnswer:
    d = orjson.loads(raw)
    usage = Usage(*d["usage"]) if d.get("usage") else None
    return CachedAnswer(d["body"].encode(), usage, d["model"], d["finish_reason"], d["stored_at"], d["simulated"])


class SemanticCacheLever(LeverBase):
    name = "semantic_cache"

    def __init__(self, state: GatewayState, workers: Workers) -> None:
        self.state = state  # for the provider-embedding lookups, which are calls of their own
        self.settings: Settings = state.settings
        self.workers = workers
        self._semantic: SemanticCache | None = None
        self._semantic_lock = threading.Lock()

    @classmethod
    def build(cls, state: GatewayState, workers: Workers) -> SemanticCacheLever:
        return cls(state, workers)

    @staticmethod
    def mode(call: CallRecord) -> str:
        assert call.route is not None
        key_mode = call.key.semantic_cache if call.key is not None else None
        return call.hints.semantic_cache or key_mode or call.route.optimize.semantic_cache or "off"

    def applies(self, call: CallRecord) -> bool:
        return self.mode(call) != "off"

    async def before_dispatch(self, call: CallRecord) -> CachedAnswer | None:
        """Look the call up: serve a verified match (``on``), or only record it (``shadow``)."""
        assert call.key is not None and call.route is not None and call.body is not None
        s = self.settings.cache.semantic
        keyed = semantic_key(
            call.key.customer_id,
            call.route.name,
            call.body,
            call.messages,
            multi_turn=s.multi_turn,
            include_sampled=s.include_sampled,
        )
        if isinstance(keyed, str):
            call.cache_status = call.cache_status or "bypass"
            return None
        scope, text = keyed
        provided = None
        if s.embedding_model is not None:
            provided = await self._provider_vector(call, s.embedding_model, text)
            if provided is None:
                call.cache_status = call.cache_status or "bypass"  # no vector: the call goes on uncached
                return None
        match, vector = await self.workers.run(self._lookup, scope, text, provided)
        call.semantic_pending = (scope, text, vector)
        call.store_answer = True
        call.cache_status = "miss"
        if match is None:
            return None
        call.cache_similarity, call.cache_match_id = round(float(match.similarity), 6), match.entry_id
        if not match.verified:
            return None
        if self.mode(call) == "shadow":
            call.cache_status = "shadow_hit"
            return None
        call.semantic_pending = None
        call.cache_status = "hit_semantic"
        return _answer_from_bytes(match.response)

    def after(self, call: CallRecord, result: bytes) -> None:
        if call.semantic_pending is None or call.usage is None:
            return
        scope, text, vector = call.semantic_pending
        call.semantic_pending = None
        payload = _answer_bytes(answer_of(call, result))

        def insert() -> None:  # in the background: the client has its answer and must not wait for the write
            try:
                self._cache(len(vector)).insert(scope, text, payload, vector=vector)
            except Exception:
                log.exception("semantic cache insert failed (the answer was served; only the entry is lost)")

        self.workers.submit(insert)

    async def _provider_vector(self, call: CallRecord, model: str, text: str) -> Any:
        """``text`` embedded by ``model`` through Apex's own embeddings path, as the calling key: admitted against its
        limits, routed with retries and fallbacks, priced and logged as its own event (feature ``apex:semantic-cache``),
        so the lookup's cost is in the spend like any call's. None (logged) if it fails: the chat call is not failed."""
        import numpy as np  # noqa: PLC0415 - only gateways with a semantic cache need it

        state = self.state
        lookup = CallRecord(endpoint=EMBEDDINGS_ENDPOINT)
        lookup.key, lookup.end_user, lookup.feature, lookup.tags = (
            call.key,
            call.end_user,
            "apex:semantic-cache",
            call.tags,
        )
        try:
            result = await embed_call(state, lookup, {"model": model, "input": text})
            vector = np.asarray(orjson.loads(result.body)["data"][0]["embedding"], dtype=np.float32)
            norm = float(np.linalg.norm(vector))
            if vector.ndim != 1 or not vector.size or not norm or not np.isfinite(norm):
                raise UpstreamError(f"{model!r} returned no usable embedding", code="upstream_bad_response")
            return vector / norm
        except ApexError as err:
            lookup.fail(err)
            log.warning(
                "semantic cache lookup skipped for %s: embedding with %r failed: %s", call.request_id, model, err
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            lookup.fail(UpstreamError(f"unexpected embeddings answer: {exc!r}", code="upstream_bad_response"))
            log.warning("semantic cache lookup skipped for %s: %r answered an unexpected shape", call.request_id, model)
        finally:
            state.finish(lookup)
        return None

    def _cache(self, dimension: int | None = None) -> SemanticCache:
        """The cache (opened on first use). With ``cache.semantic.embedding_model`` the vectors come from the
        provider, so the first one sets the dimension, and the entries get their own directory."""
        if self._semantic is None:
            with self._semantic_lock:
                if self._semantic is None:
                    from optimizers.semantic_cache import SemanticCache  # noqa: PLC0415 - heavy (lancedb): on first use

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
                    freeze_imports()
        return self._semantic

    def _lookup(self, scope: str, text: str, vector: Any) -> tuple[CacheMatch | None, Any]:
        """The best match for ``text`` and the vector it was looked up with (embedded here with the bundled model
        unless ``vector`` came from the configured provider model)."""
        if vector is None:
            cache = self._cache()
            vector = cache.embed(text)
        else:
            cache = self._cache(len(vector))
        return cache.lookup(scope, text, vector=vector), vector

    async def stop(self) -> None:
        if self._semantic is not None:
            try:
                self._semantic.close()
            except Exception:  # closing at shutdown: nothing left to protect
                log.debug("semantic cache close failed", exc_info=True)

    def stats(self) -> dict[str, Any]:
        return {"semantic_cache_entries": len(self._semantic)} if self._semantic is not None else {}
