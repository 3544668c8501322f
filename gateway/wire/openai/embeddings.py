"""The OpenAI-compatible embeddings API: ``POST /v1/embeddings``, one priced event per call."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from gateway.calls import CallRecord
from gateway.embed import ENDPOINT, embed_call
from gateway.errors import JSON, error_response
from gateway.lifecycle import CallLifecycle, WireFormat
from gateway.providers.base import EmbeddingResult
from gateway.schemas import validate_embeddings

__all__ = ["embeddings"]


def _checked(body: dict[str, Any]) -> dict[str, Any]:
    validate_embeddings(body)
    return body


def _render(call: CallRecord, body: dict[str, Any], result: EmbeddingResult) -> Response:
    return Response(result.body, media_type=JSON, headers={"x-request-id": call.request_id})


embeddings = CallLifecycle(ENDPOINT, WireFormat(error_response, _checked, _render), embed_call).handle
