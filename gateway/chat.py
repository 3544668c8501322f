"""The chat flow every inbound format shares, in the canonical (OpenAI chat-completions) shape.

``run_chat`` takes the canonical body and returns either a finished ``ChatResult`` or a ``StreamSession`` that
yields canonical chunks: validate → resolve the route → admit (budgets, limits) → the levers in order (a cache may
answer; compression and routing may change the request) → dispatch → hand the finished answer to the levers.
The lifecycle around it (auth, errors, the one event per call) is ``gateway.lifecycle``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING

from gateway.cache.exact import CachedAnswer, replay_stream
from gateway.calls import CallRecord
from gateway.errors import model_not_found
from gateway.hints import Hints
from gateway.inbound import validate_chat_request
from gateway.keys.access import authorize
from gateway.providers.base import ChatResult, StreamChunk
from gateway.stream import StreamSession
from gateway.usage import completion_text, estimate_usage

if TYPE_CHECKING:
    from typing import Any

    from gateway.state import GatewayState

__all__ = ["run_chat"]


async def run_chat(
    state: GatewayState, call: CallRecord, body: dict[str, Any], headers: Mapping[str, str] | None
) -> ChatResult | StreamSession:
    """Validate, route, admit, optimize and dispatch one canonical chat call. Raises ``ApexError`` before any byte
    is sent.

    ``headers`` are the client's request headers: the optimizer hints (``gateway.hints.Hints``); the key's and the
    model's settings apply where they are silent."""
    model, messages = validate_chat_request(body)
    call.hints = Hints.from_request(headers, body)
    call.requested_model = model
    call.messages = messages
    call.is_stream = bool(body.get("stream"))
    route = state.routes.get(model)
    if route is None:
        raise model_not_found(model)
    assert call.key is not None and state.dispatcher is not None
    authorize(state.keys, state.settings, call.key, call.endpoint, model)  # 403 before any cost
    assert state.limiter is not None
    # the reservation is for the route asked for (the strong model under auto-routing): the worst case
    await state.limiter.admit(call, body, route)
    call.baseline_price_model = route.baseline_price_model
    call.body, call.route = body, route
    levers = state.levers
    for lever in levers.active:
        if lever.applies(call):
            answer = await lever.before_dispatch(call)
            if answer is not None:
                return _serve_answer(state, call, answer)
    body, route = call.body, call.route
    if call.is_stream:
        first, chunks = await state.dispatcher.open_stream(call, body, route)
        return StreamSession(state, call, first, chunks)
    result = await state.dispatcher.chat(call, body, route)
    call.finish_reason = result.finish_reason
    if result.usage is not None:
        call.usage, call.usage_source = result.usage, "provider"
    else:
        call.usage = estimate_usage(body.get("messages"), model, completion_text(result.body))
        call.usage_source = "estimated"
    if call.store_answer:
        levers.after(call, result.body)
    return result


def _serve_answer(state: GatewayState, call: CallRecord, hit: CachedAnswer) -> ChatResult | StreamSession:
    """Answer from a cache (the lever set ``cache_status``): nothing is bought, the stored answer's tokens are the
    baseline the hit saved."""
    call.store_answer = False
    call.provider, call.provider_kind, call.is_simulated = "apex-cache", "cache", hit.simulated
    call.served_model = hit.model
    call.finish_reason = hit.finish_reason
    call.usage, call.usage_source = hit.usage, "provider"  # the tokens the stored answer cost when it was bought
    if not call.is_stream:
        return ChatResult(body=hit.body, usage=hit.usage, served_model=hit.model, finish_reason=hit.finish_reason)
    chunks = replay_stream(hit)
    return StreamSession(state, call, chunks[0], _iterate(chunks[1:]))


async def _iterate(chunks: list[StreamChunk]) -> AsyncGenerator[StreamChunk, None]:
    for chunk in chunks:
        yield chunk
