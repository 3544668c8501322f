"""The chat flow every inbound format shares, in the canonical (OpenAI chat-completions) shape.

``run_chat`` takes a validated canonical body and returns either a finished ``ChatResult`` or a ``StreamSession``
that yields canonical chunks. Inbound APIs (``openai_api``, and later others) only translate at the edges and
render; the bookkeeping — usage, estimation, status, the one event per call — lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request

from gateway.cache.exact import CachedAnswer, assemble_stream, replay_stream
from gateway.calls import CallRecord
from gateway.config import ModelRoute
from gateway.errors import ApexError, UpstreamError, model_not_found
from gateway.inbound import client_headers, validate_chat_request
from gateway.optimize import Hints, routing_text, semantic_key
from gateway.providers import ChatResult, StreamChunk, Usage
from gateway.state import GatewayState
from gateway.tokens import count_message_tokens, count_text_tokens

__all__ = ["StreamSession", "attribute", "estimate_usage", "optimizer_headers", "run_chat"]

log = logging.getLogger("apex.gateway")


def attribute(call: CallRecord, request: Request, body: dict[str, Any]) -> None:
    """Who and what the call is for: end user, feature, tags (body fields win over headers)."""
    headers = client_headers(request)
    user = body.get("user")
    call.end_user = user if isinstance(user, str) else headers.get("x-apex-user")
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    feature = headers.get("x-apex-feature") or meta.get("feature")
    call.feature = feature if isinstance(feature, str) else None
    tags = headers.get("x-apex-tags")
    call.tags = [t.strip() for t in tags.split(",") if t.strip()] if tags else None


def optimizer_headers(call: CallRecord) -> dict[str, str]:
    """Response headers saying what the optimizers did to this call (and the request id)."""
    headers = {"x-request-id": call.request_id}
    if call.cache_status:
        headers["x-apex-cache"] = "hit" if call.cache_hit else call.cache_status
        if call.cache_hit:
            headers["x-apex-cache-kind"] = call.cache_status.removeprefix("hit_")
    if call.cache_similarity is not None:
        headers["x-apex-cache-similarity"] = f"{call.cache_similarity:.4f}"
    if call.compression_status:
        headers["x-apex-compression"] = call.compression_status
        headers["x-apex-compression-tokens-saved"] = str(call.compression_tokens_saved or 0)
    if call.auto_routed and call.routing_decision:
        headers["x-apex-route"] = call.routing_decision
    if call.policy_version:
        headers["x-apex-policy-version"] = call.policy_version
    return headers


def estimate_usage(messages: Any, model: str, completion_text: str) -> Usage:
    return Usage(
        prompt_tokens=count_message_tokens(messages or [], model),
        completion_tokens=count_text_tokens(completion_text, model),
    )


def _completion_text(raw: bytes) -> str:
    try:
        choices = orjson.loads(raw).get("choices") or []
        return "".join((c.get("message") or {}).get("content") or "" for c in choices if isinstance(c, dict))
    except Exception:
        return ""


def _cache_wanted(state: GatewayState, call: CallRecord, mode: str | None) -> bool:
    if state.cache is None or mode == "off":
        return False
    return mode == "on" or bool(getattr(call.key, "cache_enabled", False))


def _serve_from_cache(state: GatewayState, call: CallRecord, body: dict[str, Any]) -> ChatResult | StreamSession | None:
    assert state.cache is not None and call.key is not None
    call.cache_key = state.cache.key_for(call.key.customer_id, body)
    hit = state.cache.get(call.cache_key)
    if hit is None:
        call.cache_status = "miss"
        return None
    return _serve_answer(state, call, hit, "hit_exact")


def _serve_answer(state: GatewayState, call: CallRecord, hit: CachedAnswer, status: str) -> ChatResult | StreamSession:
    """Answer from a cache: nothing is bought, the stored answer's tokens are the baseline the hit saved."""
    call.cache_status = status
    call.provider, call.provider_kind, call.is_simulated = "apex-cache", "cache", hit.simulated
    call.served_model = hit.model
    call.finish_reason = hit.finish_reason
    call.usage, call.usage_source = hit.usage, "provider"  # the tokens the stored answer cost when it was bought
    if not call.is_stream:
        return ChatResult(body=hit.body, usage=hit.usage, served_model=hit.model, finish_reason=hit.finish_reason)
    chunks = replay_stream(hit)
    return StreamSession(state, call, chunks[0], _iterate(chunks[1:]))


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


async def _semantic(
    state: GatewayState, call: CallRecord, body: dict[str, Any], route: ModelRoute, mode: str
) -> ChatResult | StreamSession | None:
    """Look the call up in the semantic cache: serve a verified match (``on``), or only record it (``shadow``)."""
    assert call.key is not None
    s = state.settings.cache.semantic
    keyed = semantic_key(
        call.key.customer_id,
        route.name,
        body,
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
        provided = await _provider_vector(state, call, s.embedding_model, text)
        if provided is None:
            call.cache_status = call.cache_status or "bypass"  # no vector: the call goes on uncached
            return None
    match, vector = await state.optimizers.semantic_lookup(scope, text, provided)
    call.semantic_pending = (scope, text, vector)
    call.cache_status = "miss"
    if match is None:
        return None
    call.cache_similarity, call.cache_match_id = round(float(match.similarity), 6), match.entry_id
    if not match.verified:
        return None
    if mode == "shadow":
        call.cache_status = "shadow_hit"
        return None
    call.semantic_pending = None
    return _serve_answer(state, call, _answer_from_bytes(match.response), "hit_semantic")


async def _provider_vector(state: GatewayState, call: CallRecord, model: str, text: str) -> Any:
    """``text`` embedded by ``model`` through Apex's own embeddings path, as the calling key: admitted against its
    limits, routed with retries and fallbacks, priced and logged as its own event (feature ``apex:semantic-cache``),
    so the lookup's cost is in the spend like any call's. None (logged) if it fails: the chat call is not failed."""
    import numpy as np

    from gateway.embeddings_api import ENDPOINT, embed_call  # imports this module: import here, not at the top

    lookup = CallRecord(endpoint=ENDPOINT)
    lookup.key, lookup.end_user, lookup.feature, lookup.tags = call.key, call.end_user, "apex:semantic-cache", call.tags
    try:
        result = await embed_call(state, lookup, {"model": model, "input": text})
        vector = np.asarray(orjson.loads(result.body)["data"][0]["embedding"], dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if vector.ndim != 1 or not vector.size or not norm or not np.isfinite(norm):
            raise UpstreamError(f"{model!r} returned no usable embedding", code="upstream_bad_response")
        return vector / norm
    except ApexError as err:
        lookup.fail(err)
        log.warning("semantic cache lookup skipped for %s: embedding with %r failed: %s", call.request_id, model, err)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        lookup.fail(UpstreamError(f"unexpected embeddings answer: {exc!r}", code="upstream_bad_response"))
        log.warning("semantic cache lookup skipped for %s: %r answered an unexpected shape", call.request_id, model)
    finally:
        state.finish(lookup)
    return None


def _compress(state: GatewayState, call: CallRecord, body: dict[str, Any], model: str) -> dict[str, Any]:
    from optimizers.compression import compress_messages

    result = compress_messages(call.messages, model, min_quality=state.settings.optimizers.compression.min_quality)
    if result.status == "fallback":
        call.compression_status = f"fallback: {result.fallback_reason}"
        call.compression_tokens_saved = 0
        return body
    call.compression_status = result.status
    call.compression_tokens_saved = result.tokens_saved
    if result.status != "compressed":
        return body
    call.upstream_messages = result.messages
    return {**body, "messages": result.messages}


async def _auto_route(
    state: GatewayState, call: CallRecord, strong: ModelRoute, weak: ModelRoute, hints: Hints
) -> ModelRoute:
    """Learned routing: the policy picks the strong or the cheap model; the strong one is the baseline."""
    call.baseline_price_model = strong.baseline_price_model
    decision = await state.optimizers.decide(routing_text(call.messages), hints)
    if decision is None:
        call.routing_decision = "auto: strong (no routing policy loaded yet)"
        return strong
    call.auto_routed = True
    call.policy_version = decision.policy_version
    call.routing_decision = f"auto: {decision.tier} ({decision.reason})"
    return weak if decision.tier == "weak" else strong


async def _iterate(chunks: list[StreamChunk]) -> AsyncIterator[StreamChunk]:
    for chunk in chunks:
        yield chunk


def _store(state: GatewayState, call: CallRecord, body: bytes, finish_reason: str | None) -> None:
    exact = state.cache is not None and call.cache_status == "miss" and call.cache_key
    semantic = call.semantic_pending is not None and call.usage is not None
    if call.http_status != 200 or not (exact or semantic):
        return  # the common case: no cache asked for this answer
    answer = CachedAnswer(body, call.usage, call.served_model or "", finish_reason, time.time(), call.is_simulated)
    if exact:
        assert state.cache is not None and call.cache_key
        state.cache.put(call.cache_key, answer)
    if semantic:
        assert call.semantic_pending is not None
        scope, text, vector = call.semantic_pending
        call.semantic_pending = None
        state.optimizers.semantic_store(scope, text, _answer_bytes(answer), vector)


async def run_chat(
    state: GatewayState, call: CallRecord, body: dict[str, Any], *, headers: Any = None
) -> ChatResult | StreamSession:
    """Validate, route, admit, optimize and dispatch one canonical chat call. Raises ``ApexError`` before any byte
    is sent.

    ``headers`` are the client's request headers: ``x-apex-cache`` (exact cache ``on``/``off``) and the optimizer
    hints (``gateway.optimize.Hints``); the key's and the model's settings apply where they are silent."""
    model, messages = validate_chat_request(body)
    hints = Hints.from_request(headers, body)
    call.requested_model = model
    call.messages = messages
    call.is_stream = bool(body.get("stream"))
    auto = state.optimizers.auto_route_for(call, model)
    route = auto[0] if auto is not None else state.settings.route(model)
    if route is None:
        raise model_not_found(model)
    assert call.key is not None and state.dispatcher is not None
    assert state.limiter is not None
    # the reservation is for the route asked for (the strong model under auto-routing): the worst case
    await state.limiter.admit(call, body, route)
    call.baseline_price_model = route.baseline_price_model
    if _cache_wanted(state, call, hints.exact_cache):
        cached = _serve_from_cache(state, call, body)
        if cached is not None:
            return cached
    semantic_mode = state.optimizers.semantic_mode(call, route, hints)
    if semantic_mode != "off":
        cached = await _semantic(state, call, body, route, semantic_mode)
        if cached is not None:
            return cached
    if state.optimizers.compression_wanted(call, route, hints):
        body = _compress(state, call, body, route.baseline_price_model)
    if auto is not None:
        route = await _auto_route(state, call, auto[0], auto[1], hints)
    if call.is_stream:
        first, chunks = await state.dispatcher.open_stream(call, body, route)
        return StreamSession(state, call, first, chunks)
    result = await state.dispatcher.chat(call, body, route)
    call.finish_reason = result.finish_reason
    if result.usage is not None:
        call.usage, call.usage_source = result.usage, "provider"
    else:
        call.usage = estimate_usage(body.get("messages"), model, _completion_text(result.body))
        call.usage_source = "estimated"
    _store(state, call, result.body, result.finish_reason)
    return result


def _delta_text(data: dict[str, Any]) -> str:
    out = []
    for choice in data.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            out.append(delta["content"])
    return "".join(out)


class StreamSession:
    """An open upstream stream plus its bookkeeping. Iterate ``chunks()`` exactly once.

    Whatever ends the stream — its last chunk, an upstream failure (re-raised as ``ApexError`` for the renderer
    to send in-band), or the client going away (cancellation) — the call is recorded once, with the provider's
    usage if it arrived and a tokenizer estimate of what was streamed otherwise."""

    def __init__(
        self, state: GatewayState, call: CallRecord, first: StreamChunk, upstream: AsyncIterator[StreamChunk]
    ) -> None:
        self.state = state
        self.call = call
        self._first: StreamChunk | None = first
        self._upstream = upstream
        self.usage: Usage | None = None
        self._text: list[str] = []
        wants_copy = call.cache_status == "miss" or call.semantic_pending is not None
        self._collected: list[dict[str, Any]] | None = [] if wants_copy else None

    def mark_sent(self) -> None:
        """The renderer sent bytes to the client: the first time, that is the time to first token."""
        if self.call.ttft_s is None:
            self.call.ttft_s = time.perf_counter() - self.call.t0

    async def chunks(self) -> AsyncIterator[StreamChunk]:
        call = self.call
        t_first = time.perf_counter()
        try:
            chunk, self._first = self._first, None
            while chunk is not None:
                data = chunk.data
                if data.get("usage"):
                    self.usage = Usage.from_openai(data["usage"])
                for choice in data.get("choices") or ():
                    if isinstance(choice, dict) and choice.get("finish_reason"):
                        call.finish_reason = choice["finish_reason"]
                self._text.append(_delta_text(data))
                if self._collected is not None:
                    self._collected.append(data)
                yield chunk
                chunk = await anext(self._upstream, None)
            # only a complete stream with provider usage is worth replaying later
            assembled = assemble_stream(self._collected) if self._collected is not None else None
            if assembled is not None and self.usage is not None:
                call.usage = self.usage
                _store(self.state, call, orjson.dumps(assembled), call.finish_reason)
        except ApexError as err:
            call.fail(err)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            call.http_status, call.error_type = 499, "client_disconnected"
            raise
        finally:
            call.upstream_s += time.perf_counter() - t_first
            with contextlib.suppress(Exception):
                await self._upstream.aclose()
            if self.usage is not None:
                call.usage, call.usage_source = self.usage, "provider"
            else:
                # what was streamed is billed by the provider even if the stream did not finish
                sent = call.upstream_messages or call.messages
                call.usage = estimate_usage(sent, call.requested_model or "", "".join(self._text))
                call.usage_source = "estimated"
            self.state.finish(call)
