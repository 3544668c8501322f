"""The chat flow every inbound format shares, in the canonical (OpenAI chat-completions) shape.

``run_chat`` takes a validated canonical body and returns either a finished ``ChatResult`` or a ``StreamSession``
that yields canonical chunks. Inbound APIs (``openai_api``, and later others) only translate at the edges and
render; the bookkeeping — usage, estimation, status, the one event per call — lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request

from gateway.cache.exact import CachedAnswer, assemble_stream, replay_stream
from gateway.calls import CallRecord
from gateway.errors import ApexError, NotFoundError
from gateway.inbound import validate_chat_request
from gateway.providers import ChatResult, StreamChunk, Usage
from gateway.state import GatewayState
from gateway.tokens import count_message_tokens, count_text_tokens

__all__ = ["StreamSession", "attribute", "estimate_usage", "run_chat"]


def attribute(call: CallRecord, request: Request, body: dict[str, Any]) -> None:
    """Who and what the call is for: end user, feature, tags (body fields win over headers)."""
    user = body.get("user")
    call.end_user = user if isinstance(user, str) else request.headers.get("x-apex-user")
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    feature = request.headers.get("x-apex-feature") or meta.get("feature")
    call.feature = feature if isinstance(feature, str) else None
    tags = request.headers.get("x-apex-tags")
    call.tags = [t.strip() for t in tags.split(",") if t.strip()] if tags else None


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
    call.cache_status = "hit_exact"
    call.provider, call.provider_kind, call.is_simulated = "apex-cache", "cache", hit.simulated
    call.served_model = hit.model
    call.finish_reason = hit.finish_reason
    call.usage, call.usage_source = hit.usage, "provider"  # the tokens the stored answer cost when it was bought
    if not call.is_stream:
        return ChatResult(body=hit.body, usage=hit.usage, served_model=hit.model, finish_reason=hit.finish_reason)
    chunks = replay_stream(hit)
    return StreamSession(state, call, chunks[0], _iterate(chunks[1:]))


async def _iterate(chunks: list[StreamChunk]) -> AsyncIterator[StreamChunk]:
    for chunk in chunks:
        yield chunk


def _store(state: GatewayState, call: CallRecord, body: bytes, finish_reason: str | None) -> None:
    if state.cache is not None and call.cache_status == "miss" and call.cache_key and call.http_status == 200:
        state.cache.put(
            call.cache_key,
            CachedAnswer(body, call.usage, call.served_model or "", finish_reason, time.time(), call.is_simulated),
        )


async def run_chat(
    state: GatewayState, call: CallRecord, body: dict[str, Any], *, cache_mode: str | None = None
) -> ChatResult | StreamSession:
    """Validate, route, admit and dispatch one canonical chat call. Raises ``ApexError`` before any byte is sent.

    ``cache_mode`` is the client's ``x-apex-cache`` header (``on``/``off``); the key's setting applies otherwise."""
    model, messages = validate_chat_request(body)
    call.requested_model = model
    call.messages = messages
    call.is_stream = bool(body.get("stream"))
    route = state.settings.route(model)
    if route is None:
        raise NotFoundError(
            f"The model '{model}' does not exist or is not configured in Apex (see GET /v1/models).",
            param="model",
            code="model_not_found",
        )
    assert call.key is not None and state.dispatcher is not None
    assert state.limiter is not None
    await state.limiter.admit(call, body, route)
    if _cache_wanted(state, call, cache_mode):
        call.baseline_price_model = route.baseline_price_model
        cached = _serve_from_cache(state, call, body)
        if cached is not None:
            return cached
    if call.is_stream:
        first, chunks = await state.dispatcher.open_stream(call, body, route)
        return StreamSession(state, call, first, chunks)
    result = await state.dispatcher.chat(call, body, route)
    call.finish_reason = result.finish_reason
    if result.usage is not None:
        call.usage, call.usage_source = result.usage, "provider"
    else:
        call.usage = estimate_usage(messages, model, _completion_text(result.body))
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
        self._collected: list[dict[str, Any]] | None = [] if call.cache_status == "miss" else None

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
                call.usage = estimate_usage(call.messages, call.requested_model or "", "".join(self._text))
                call.usage_source = "estimated"
            self.state.finish(call)
