"""The OpenAI-compatible embeddings API: ``POST /v1/embeddings``, one priced event per call."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.calls import CallRecord
from gateway.chat import attribute
from gateway.errors import ApexError, InvalidRequestError, model_not_found
from gateway.inbound import positive_int, read_json_body, require_model
from gateway.openai_api import JSON, error_response, internal_error
from gateway.providers.base import EmbeddingResult, Usage
from gateway.state import GatewayState
from gateway.tokens import count_text_tokens

__all__ = ["embed_call", "embeddings", "validate_embeddings_request"]

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


async def embed_call(state: GatewayState, call: CallRecord, body: dict[str, Any]) -> EmbeddingResult:
    """Validate, admit and dispatch one embeddings call for ``call.key`` (the endpoint's, and the semantic cache's
    lookups when it embeds with a provider). Sets the call's usage; the caller records the call."""
    model, inputs = validate_embeddings_request(body)
    call.requested_model = model
    call.messages = inputs
    route = state.settings.route(model)
    if route is None:
        raise model_not_found(model)
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


async def embeddings(request: Request) -> Response:
    state: GatewayState = request.app.state.apex
    call = CallRecord(endpoint=ENDPOINT)
    try:
        call.key = state.authenticate(request)
    except ApexError as err:
        return error_response(err, call.request_id)
    try:
        body = await read_json_body(request, state.settings.gateway.max_body_bytes)
        attribute(call, request, body)
        result = await embed_call(state, call, body)
        return Response(result.body, media_type=JSON, headers={"x-request-id": call.request_id})
    except ApexError as err:
        call.fail(err)
        return error_response(err, call.request_id)
    except Exception:
        return error_response(internal_error(call), call.request_id)
    finally:
        state.finish(call)
