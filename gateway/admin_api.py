"""The admin API for keys and team budgets (``/admin/...``), guarded by the master key; JSON in and out.

POST   /admin/keys                  create a key (the plain key is in the answer, once)
GET    /admin/keys                  list keys (hints only)
GET    /admin/keys/{key_id}         one key
PATCH  /admin/keys/{key_id}         change name, team, budget_usd, budget_period, rpm, tpm, cache, semantic_cache,
                                   compression, auto_route, models, endpoints, expires_at / expires_in (null clears)
POST   /admin/keys/{key_id}/rotate  new secret; the old one works for grace_seconds more (default 24 h)
POST   /admin/keys/{key_id}/revoke  revoke (the key and any secret in grace)
GET    /admin/teams                 list team budgets
PUT    /admin/teams/{team_id}       set a team's budget_usd and period (and models, endpoints when given)

``models`` and ``endpoints`` are lists of names (endpoints by short name or path, ``gateway.keys.access``);
``expires_at`` is a unix time, ``expires_in`` seconds from now. Every change is written to the audit log
(``gateway.audit``) with the master key's fingerprint as the actor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts.ids import new_id
from gateway.audit import AuditLog, key_changes, master_key_actor, team_changes
from gateway.errors import ApexError, InvalidRequestError, NotFoundError
from gateway.inbound import bearer_token, read_json_body
from gateway.keys import DEFAULT_GRACE_SECONDS, ApiKey
from gateway.keys.records import key_json, team_json
from gateway.schemas import validate_key_fields, validate_rotate, validate_team
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
    "models",
    "endpoints",
    "expires_at",
    "expires_in",
}
Handler = Callable[[Request, GatewayState], Awaitable[Any]]


def _key_json(key: ApiKey) -> dict[str, Any]:
    return {"object": "api_key", **key_json(key), "active": key.active}


async def _audit(
    request: Request, state: GatewayState, action: str, target_type: str, target_id: str, changes: dict[str, Any]
) -> None:
    """One audit row for an applied action, the actor named by the master key's fingerprint (never the key)."""
    audit = AuditLog.for_data_dir(state.settings.data.dir, state.gateway_id)
    actor = master_key_actor(bearer_token(request))
    await asyncio.to_thread(audit.record, actor, action, target_type, target_id, changes)


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
    validate_key_fields(body)  # types and bounds, each error naming its field (gateway.schemas.admin)
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
    _typed(body, "models", (list,))
    _typed(body, "endpoints", (list,))
    _typed(body, "expires_at", (int, float))
    _typed(body, "expires_in", (int, float), nullable=False)
    if "expires_in" in body:
        if "expires_at" in body:
            raise InvalidRequestError("Give 'expires_at' or 'expires_in', not both.", param="expires_in")
        seconds = body.pop("expires_in")
        if not 0 < seconds <= 100 * 365 * 86400:  # NaN and inf fail too
            raise InvalidRequestError(
                "'expires_in' must be a positive number of seconds (at most 100 years).",
                param="expires_in",
                code="invalid_value",
            )
        body["expires_at"] = time.time() + seconds


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
        models=body.get("models"),
        endpoints=body.get("endpoints"),
        expires_at=body.get("expires_at"),
    )
    await _audit(request, state, "key.created", "key", key.key_id, key_changes(None, key))
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
    old = _key_or_404(state.keys.get(key_id), key_id)
    key = _key_or_404(state.keys.update(key_id, **body), key_id)
    changes = key_changes(old, key)
    if changes:
        await _audit(request, state, "key.updated", "key", key_id, changes)
    return _key_json(key)


async def rotate_key(request: Request, state: GatewayState) -> dict[str, Any]:
    key_id = request.path_params["key_id"]
    body = await _body(request, {"grace_seconds"})
    validate_rotate(body)
    _typed(body, "grace_seconds", (int, float), nullable=False)
    rotated = state.keys.rotate(key_id, grace_seconds=body.get("grace_seconds", DEFAULT_GRACE_SECONDS))
    if rotated is None:
        raise NotFoundError(f"No active key {key_id!r}.", param="key_id", code="key_not_found")
    key, plain, old_expires_at = rotated
    await _audit(request, state, "key.rotated", "key", key_id, {"previous_secret_expires_at": [None, old_expires_at]})
    return {**_key_json(key), "key": plain, "previous_key_expires_at": old_expires_at}


async def revoke_key(request: Request, state: GatewayState) -> dict[str, Any]:
    key_id = request.path_params["key_id"]
    if not state.keys.revoke(key_id):
        raise NotFoundError(f"No active key {key_id!r}.", param="key_id", code="key_not_found")
    key = _key_or_404(state.keys.get(key_id), key_id)
    await _audit(request, state, "key.revoked", "key", key_id, {"revoked_at": [None, key.revoked_at]})
    return _key_json(key)


async def list_teams(request: Request, state: GatewayState) -> dict[str, Any]:
    return {"object": "list", "data": [team_json(t) for t in state.keys.list_teams()]}


async def put_team(request: Request, state: GatewayState) -> dict[str, Any]:
    body = await _body(request, {"budget_usd", "period", "models", "endpoints"})
    validate_team(body)
    _typed(body, "budget_usd", (int, float))
    _typed(body, "period", (str,), nullable=False)
    _typed(body, "models", (list,))
    _typed(body, "endpoints", (list,))
    team_id = request.path_params["team_id"]
    lists = {name: body[name] for name in ("models", "endpoints") if name in body}
    old = state.keys.get_team(team_id)
    team = state.keys.set_team(team_id, budget_usd=body.get("budget_usd"), period=body.get("period", "total"), **lists)
    changes = team_changes(old, team)
    if changes:
        await _audit(request, state, "team.updated", "team", team_id, changes)
    return team_json(team)


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
