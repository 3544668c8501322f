"""The admin API for keys and team budgets (``/admin/...``), guarded by the master key; JSON in and out.

POST   /admin/keys                  create a key (the plain key is in the answer, once)
GET    /admin/keys                  list keys (hints only)
GET    /admin/keys/{key_id}         one key
PATCH  /admin/keys/{key_id}         change name, team, budget_usd, budget_period, rpm, tpm, cache, semantic_cache,
                                   compression, auto_route (null clears)
POST   /admin/keys/{key_id}/rotate  new secret; the old one works for grace_seconds more (default 24 h)
POST   /admin/keys/{key_id}/revoke  revoke (the key and any secret in grace)
GET    /admin/teams                 list team budgets
PUT    /admin/teams/{team_id}       set a team's budget_usd and period
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts.ids import new_id
from gateway.errors import ApexError, InvalidRequestError, NotFoundError
from gateway.inbound import read_json_body
from gateway.keys import DEFAULT_GRACE_SECONDS, ApiKey
from gateway.state import GatewayState

__all__ = ["admin_routes"]

_MAX_BODY = 64 * 1024
_KEY_FIELDS = {
    "name",
    "team_id",
    "budget_usd",
    "budget_period",
    "rpm",
    "tpm",
    "cache",
    "semantic_cache",
    "compression",
    "auto_route",
}
Handler = Callable[[Request, GatewayState], Awaitable[Any]]


def _key_json(key: ApiKey) -> dict[str, Any]:
    return {"object": "api_key", **dataclasses.asdict(key), "active": key.active}


def _guarded(handler: Handler, status: int = 200) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state: GatewayState = request.app.state.apex
        try:
            assert state.master_key is not None
            state.master_key.require(request)
            body = await handler(request, state)
        except ApexError as err:
            return Response(
                err.body(),
                status_code=err.status,
                media_type="application/json",
                headers={"x-request-id": new_id(), **err.headers()},
            )
        except ValueError as exc:  # the key store's validation
            invalid = InvalidRequestError(str(exc), code="invalid_value")
            return Response(
                invalid.body(),
                status_code=invalid.status,
                media_type="application/json",
                headers={"x-request-id": new_id()},
            )
        return Response(
            orjson.dumps(body), status_code=status, media_type="application/json", headers={"x-request-id": new_id()}
        )

    return endpoint


async def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    body = await read_json_body(request, _MAX_BODY, allow_empty=True)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequestError(f"Unknown field(s) {unknown}; allowed: {sorted(allowed)}.", param=unknown[0])
    return body


def _typed(body: dict[str, Any], name: str, kinds: tuple[type, ...], *, nullable: bool = True) -> None:
    if name not in body:
        return
    value = body[name]
    if value is None and nullable:
        return
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise InvalidRequestError(f"'{name}' has the wrong type.", param=name, code="invalid_type")


def _check_key_fields(body: dict[str, Any]) -> None:
    _typed(body, "name", (str,), nullable=False)
    _typed(body, "customer_id", (str,), nullable=False)
    _typed(body, "team_id", (str,))
    _typed(body, "budget_usd", (int, float))
    _typed(body, "budget_period", (str,), nullable=False)
    _typed(body, "rpm", (int,))
    _typed(body, "tpm", (int,))
    _typed(body, "cache", (bool,), nullable=False)
    _typed(body, "semantic_cache", (str,))
    _typed(body, "compression", (bool,))
    _typed(body, "auto_route", (bool,), nullable=False)


def _key_or_404(key: ApiKey | None, key_id: str) -> ApiKey:
    if key is None:
        raise NotFoundError(f"No key {key_id!r}.", param="key_id", code="key_not_found")
    return key


async def create_key(request: Request, state: GatewayState) -> dict[str, Any]:
    body = await _body(request, _KEY_FIELDS | {"customer_id"})
    _check_key_fields(body)
    if not body.get("name"):
        raise InvalidRequestError("'name' is required.", param="name", code="missing_field")
    key, plain = state.keys.create(
        body["name"],
        customer_id=body.get("customer_id", "default"),
        team_id=body.get("team_id"),
        budget_usd=body.get("budget_usd"),
        budget_period=body.get("budget_period", "total"),
        rpm=body.get("rpm"),
        tpm=body.get("tpm"),
        cache_enabled=body.get("cache", False),
        semantic_cache=body.get("semantic_cache"),
        compression=body.get("compression"),
        auto_route=body.get("auto_route", False),
    )
    return {**_key_json(key), "key": plain}


async def list_keys(request: Request, state: GatewayState) -> dict[str, Any]:
    return {"object": "list", "data": [_key_json(k) for k in state.keys.list()]}


async def get_key(request: Request, state: GatewayState) -> dict[str, Any]:
    key_id = request.path_params["key_id"]
    return _key_json(_key_or_404(state.keys.get(key_id), key_id))


async def update_key(request: Request, state: GatewayState) -> dict[str, Any]:
    key_id = request.path_params["key_id"]
    body = await _body(request, _KEY_FIELDS)
    _check_key_fields(body)
    if "cache" in body:
        body["cache_enabled"] = body.pop("cache")
    return _key_json(_key_or_404(state.keys.update(key_id, **body), key_id))


async def rotate_key(request: Request, state: GatewayState) -> dict[str, Any]:
    key_id = request.path_params["key_id"]
    body = await _body(request, {"grace_seconds"})
    _typed(body, "grace_seconds", (int, float), nullable=False)
    rotated = state.keys.rotate(key_id, grace_seconds=body.get("grace_seconds", DEFAULT_GRACE_SECONDS))
    if rotated is None:
        raise NotFoundError(f"No active key {key_id!r}.", param="key_id", code="key_not_found")
    key, plain, old_expires_at = rotated
    return {**_key_json(key), "key": plain, "previous_key_expires_at": old_expires_at}


async def revoke_key(request: Request, state: GatewayState) -> dict[str, Any]:
    key_id = request.path_params["key_id"]
    if not state.keys.revoke(key_id):
        raise NotFoundError(f"No active key {key_id!r}.", param="key_id", code="key_not_found")
    return _key_json(_key_or_404(state.keys.get(key_id), key_id))


async def list_teams(request: Request, state: GatewayState) -> dict[str, Any]:
    return {"object": "list", "data": [dataclasses.asdict(t) for t in state.keys.list_teams()]}


async def put_team(request: Request, state: GatewayState) -> dict[str, Any]:
    body = await _body(request, {"budget_usd", "period"})
    _typed(body, "budget_usd", (int, float))
    _typed(body, "period", (str,), nullable=False)
    team = state.keys.set_team(
        request.path_params["team_id"], budget_usd=body.get("budget_usd"), period=body.get("period", "total")
    )
    return dataclasses.asdict(team)


admin_routes = [
    Route("/admin/keys", _guarded(create_key, 201), methods=["POST"]),
    Route("/admin/keys", _guarded(list_keys), methods=["GET"]),
    Route("/admin/keys/{key_id}", _guarded(get_key), methods=["GET"]),
    Route("/admin/keys/{key_id}", _guarded(update_key), methods=["PATCH"]),
    Route("/admin/keys/{key_id}/rotate", _guarded(rotate_key), methods=["POST"]),
    Route("/admin/keys/{key_id}/revoke", _guarded(revoke_key), methods=["POST"]),
    Route("/admin/teams", _guarded(list_teams), methods=["GET"]),
    Route("/admin/teams/{team_id}", _guarded(put_team), methods=["PUT"]),
]
