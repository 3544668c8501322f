"""The embeddings flow in the canonical (OpenAI) shape: validate → admit → dispatch, priced like a chat call.

Used by ``POST /v1/embeddings`` and by the semantic cache when it embeds with a provider's model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from contracts.tokens import count_text_tokens
from gateway.calls import CallRecord
from gateway.errors import InvalidRequestError, model_not_found
from gateway.inbound import positive_int, require_model
from gateway.keys.access import authorize
from gateway.providers.base import EmbeddingResult, Usage

if TYPE_CHECKING:
    from gateway.state import GatewayState

__all__ = ["ENDPOINT", "embed_call", "validate_embeddings_request"]

ENDPOINT = "/v1/embeddings"
_INPUT_HELP = "'input' must be a non-empty string, array of strings, array of token ids, or array of token arrays."


def _is_tokens(value: Any) -> bool:
    return (
        isinstance(value, list) and bool(value) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


def validate_embeddings_request(body: dict[str, Any]) -> tuple[str, Any]:
    model = require_model(body)
    inputs = body.get("input")
    if inputs is None:
        raise InvalidRequestError(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    valid = (
        (isinstance(inputs, str) and inputs != "")
        or _is_tokens(inputs)
        or (
            isinstance(inputs, list)
            and bool(inputs)
            and (all(isinstance(s, str) and s for s in inputs) or all(_is_tokens(t) for t in inputs))
        )
    )
    if not valid:
        raise InvalidRequestError(_INPUT_HELP, param="input", code="invalid_type")
    positive_int(body, "dimensions")
    return model, inputs


def _estimate(inputs: Any, model: str) -> Usage:
    items = [inputs] if isinstance(inputs, str) or _is_tokens(inputs) else inputs
    tokens = sum(count_text_tokens(i, model) if isinstance(i, str) else len(i) for i in items)
    return Usage(prompt_tokens=tokens)


async def embed_call(
    state: GatewayState, call: CallRecord, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> EmbeddingResult:
    """Validate, admit and dispatch one embeddings call for ``call.key`` (the endpoint's, and the semantic cache's
    lookups when it embeds with a provider). Sets the call's usage; the caller records the call. ``headers`` are
    taken for the lifecycle's sake: no optimizer hint applies to embeddings."""
    model, inputs = validate_embeddings_request(body)
    call.requested_model = model
    call.messages = inputs
    route = state.settings.route(model)
    if route is None:
        raise model_not_found(model)
    assert call.key is not None
    if headers is not None:  # a client's call; the semantic cache's own lookups are the gateway's, not the key's
        authorize(state.keys, state.settings, call.key, call.endpoint, model)  # 403 before any cost
    # reserve the input tokens against budgets and rate limits, like a chat call (no completion tokens)
    assert state.limiter is not None and state.dispatcher is not None
    await state.limiter.admit(
        call, body, route, prompt_tokens=_estimate(inputs, model).prompt_tokens, completion_tokens=0
    )
    # the dispatcher balances, retries, trips breakers and falls back exactly as for chat
    result = await state.dispatcher.embed(call, body, route)
    if result.usage is not None:
        call.usage, call.usage_source = result.usage, "provider"
    else:
        call.usage, call.usage_source = _estimate(inputs, model), "estimated"
    return result
