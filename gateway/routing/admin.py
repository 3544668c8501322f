"""``GET /admin/deployments``: each deployment's circuit, latency, load and last error (master key only)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from contracts.ids import new_id
from gateway.errors import JSON, ApexError, error_response

__all__ = ["list_deployments"]


async def list_deployments(request: Request) -> Response:
    state = request.app.state.apex
    try:
        assert state.master_key is not None and state.dispatcher is not None
        state.master_key.require(request)
    except ApexError as err:
        return error_response(err, new_id())
    body = {"deployments": [d.snapshot() for d in state.dispatcher.deployments()]}
    return Response(orjson.dumps(body), media_type=JSON, headers={"x-request-id": new_id()})
