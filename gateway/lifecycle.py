"""One call's lifecycle, the same for every inbound wire format.

authenticate → read the body → translate it to the canonical shape → attribute → run the flow (``run_chat`` or
``embed_call``: admit, levers, dispatch) → render the answer, or the error in the caller's wire format → finish
(exactly one event per authenticated call; a stream finishes its call when it ends). A wire format supplies only
the translation and rendering (``WireFormat``); ``CallLifecycle(endpoint, wire, flow).handle`` is the route.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from gateway.calls import CallRecord
from gateway.errors import JSON, ApexError
from gateway.inbound import client_headers, read_json_body
from gateway.stream import StreamSession

if TYPE_CHECKING:
    from gateway.state import GatewayState

__all__ = ["CLIENT_CLOSED", "JSON", "CallLifecycle", "WireFormat", "attribute", "internal_error", "optimizer_headers"]

log = logging.getLogger("apex.gateway")

CLIENT_CLOSED = 499
"""The event status of a call whose client went away before its answer (nginx's convention; streams use it too)."""

Flow = Callable[["GatewayState", CallRecord, dict[str, Any], Mapping[str, str]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class WireFormat:
    """What one inbound format does at the edges; everything between is the lifecycle's."""

    render_error: Callable[[ApexError, str], Response]
    """The error in this format's shape and status (``err``, request id)."""
    to_canonical: Callable[[dict[str, Any]], dict[str, Any]]
    """The client's body → the canonical body (validating what the format requires beyond the canonical checks)."""
    render: Callable[[CallRecord, dict[str, Any], Any], Response]
    """``(call, client body, flow outcome)`` → the response (a ``StreamSession`` becomes a streaming response)."""


def attribute(call: CallRecord, headers: Mapping[str, str], body: dict[str, Any]) -> None:
    """Who and what the call is for: end user, feature, tags (body fields win over headers)."""
    user = body.get("user")
    call.end_user = user if isinstance(user, str) else headers.get("x-apex-user")
    raw_meta = body.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
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


def internal_error(call: CallRecord) -> ApexError:
    log.exception("unexpected error in request %s", call.request_id)
    err = ApexError(
        "The gateway hit an internal error; the request id identifies it in the logs.", code="internal_error"
    )
    call.fail(err)
    return err


class CallLifecycle:
    """One inbound endpoint: its event's ``endpoint`` name, its wire format and the canonical flow it runs."""

    __slots__ = ("endpoint", "flow", "wire")

    def __init__(self, endpoint: str, wire: WireFormat, flow: Flow) -> None:
        self.endpoint = endpoint
        self.wire = wire
        self.flow = flow

    async def handle(self, request: Request) -> Response:
        state: GatewayState = request.app.state.apex
        wire = self.wire
        call = CallRecord(endpoint=self.endpoint)
        try:
            # the cache answers without an await (the hot path); an unknown key is looked up off the event loop
            call.key = state.cached_key(request) or await state.authenticate(request)
        except ApexError as err:
            return wire.render_error(err, call.request_id)  # no key, no event (counted in auth_failures)
        streaming = False
        try:
            native = await read_json_body(request, state.settings.gateway.max_body_bytes, guard=state.body_reads)
            body = wire.to_canonical(native)
            headers = client_headers(request)
            attribute(call, headers, body)
            outcome = await self.flow(state, call, body, headers)
            response = wire.render(call, native, outcome)
            streaming = isinstance(outcome, StreamSession)  # the stream finishes its call when it ends
            return response
        except ApexError as err:
            call.fail(err)
            return wire.render_error(err, call.request_id)
        except ClientDisconnect:
            # gone before its body arrived: nothing to answer and nothing wrong with the gateway (no traceback)
            call.http_status, call.error_type = CLIENT_CLOSED, "client_disconnected"
            return Response(status_code=CLIENT_CLOSED)
        except Exception:
            return wire.render_error(internal_error(call), call.request_id)
        finally:
            if not streaming:
                state.finish(call)
