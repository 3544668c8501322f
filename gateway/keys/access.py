"""Which models and endpoints a key (and its team) may use: the lists an admin sets, and the check on each call.

A key or a team may be limited to a set of model names and a set of endpoints, named by short name or path:

    chat        /v1/chat/completions (and /chat/completions)
    messages    /v1/messages
    embeddings  /v1/embeddings

A call outside either set is refused with 403 (``permission_error``; code ``model_not_allowed`` or
``endpoint_not_allowed``) in the caller's wire format, before admission: no reservation, no lever, no cost. A key
in a team must pass both lists. The auto-routing alias may be asked for when the list names it, or names both
the strong and the weak model it routes between (the call may be served by either). The check is a frozenset
lookup on records the request path already holds.
"""

from __future__ import annotations

from contracts.settings import Settings
from gateway.errors import PermissionDeniedError
from gateway.keys.records import ENDPOINT_BY_PATH, ApiKey, Team
from gateway.keys.store import KeyStore

__all__ = ["authorize", "check_endpoint", "check_model"]


def check_endpoint(key: ApiKey, team: Team | None, endpoint: str) -> None:
    """Refuse a call to ``endpoint`` (a path) that the key's or its team's endpoint list leaves out."""
    name = ENDPOINT_BY_PATH.get(endpoint)
    for allowed, whose in ((key.endpoints, "key"), (team.endpoints if team else None, "team")):
        if allowed is not None and name not in allowed:
            raise PermissionDeniedError(
                f"This {whose} may not call {endpoint} (allowed: {', '.join(sorted(allowed))}).",
                code="endpoint_not_allowed",
            )


def check_model(key: ApiKey, team: Team | None, model: str, routes_between: tuple[str, str] | None = None) -> None:
    """Refuse a call for ``model`` that the key's or its team's model list leaves out. ``routes_between`` is the
    (strong, weak) pair when ``model`` is the auto-routing alias."""
    for allowed, whose in ((key.models, "key"), (team.models if team else None, "team")):
        if allowed is None or model in allowed:
            continue
        if routes_between is not None and routes_between[0] in allowed and routes_between[1] in allowed:
            continue
        raise PermissionDeniedError(
            f"This {whose} may not use the model '{model}'.", param="model", code="model_not_allowed"
        )


def authorize(keys: KeyStore, settings: Settings, key: ApiKey, endpoint: str, model: str) -> None:
    """Refuse (403) a call the key or its team may not make: the endpoint, then the model asked for."""
    if key.team_id is None and key.models is None and key.endpoints is None:
        return  # the common case: nothing to look up
    team = keys.team(key.team_id) if key.team_id else None
    check_endpoint(key, team, endpoint)
    if key.models is not None or (team is not None and team.models is not None):
        auto = settings.optimizers.auto_routing
        pair = (auto.strong_model or "", auto.weak_model or "") if auto.enabled and model == auto.alias else None
        check_model(key, team, model, pair)
