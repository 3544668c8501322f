"""What a virtual key and a team are, how a key's secret is made and hashed, and the checks on their settings.

A key is ``sk-apex-`` + 32 url-safe random bytes (256 bits). Only its SHA-256 is stored. A slow password hash
(bcrypt, argon2) exists to protect low-entropy secrets from guessing; a 256-bit random key cannot be guessed, so
a fast hash is as safe here and keeps verification one indexed read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ENDPOINTS",
    "ENDPOINT_BY_PATH",
    "KEY_PREFIX",
    "SEMANTIC_CACHE_MODES",
    "ApiKey",
    "Team",
    "check_expires_at",
    "endpoint_names",
    "hash_key",
    "key_json",
    "model_names",
    "names_from_column",
    "names_to_column",
    "row_to_key",
    "row_to_team",
    "team_json",
]

KEY_PREFIX = "sk-apex-"

SEMANTIC_CACHE_MODES = ("off", "on", "shadow")


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_secret() -> tuple[str, str]:
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    return plain, plain[: len(KEY_PREFIX) + 4] + "…" + plain[-4:]


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    key_hint: str
    customer_id: str
    team_id: str | None
    budget_usd: float | None
    spent_usd: float
    created_at: str
    revoked_at: str | None
    budget_period: str = "total"
    """``daily``, ``weekly``, ``monthly`` (UTC calendar) or ``total``."""
    rpm: int | None = None
    tpm: int | None = None
    cache_enabled: bool = False
    """The key's owner opted in to response caching."""
    semantic_cache: str | None = None
    """``on`` (serve verified matches), ``shadow`` (log would-be hits only), ``off``; None = the model's setting."""
    compression: bool | None = None
    """Compress this key's prompts (None = the model's setting)."""
    auto_route: bool = False
    """Requests for the auto-routing strong model may be served by the weak one when the policy says so."""
    models: frozenset[str] | None = None
    """The models the key may ask for (None = any); ``gateway.keys.access``."""
    endpoints: frozenset[str] | None = None
    """The endpoints the key may call, by short name (``chat``, ``messages``, ``embeddings``; None = any)."""
    expires_at: float | None = None
    """Unix time the key stops working (None = never); checked on every call, cached or not."""

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class Team:
    team_id: str
    budget_usd: float | None
    period: str = "total"
    models: frozenset[str] | None = None
    """The models the team's keys may ask for (None = any), on top of each key's own list."""
    endpoints: frozenset[str] | None = None
    """The endpoints the team's keys may call (None = any)."""


def check_semantic_mode(mode: str | None) -> None:
    if mode is not None and mode not in SEMANTIC_CACHE_MODES:
        raise ValueError(f"semantic_cache must be one of {', '.join(SEMANTIC_CACHE_MODES)} (got {mode!r})")


ENDPOINTS = {
    "chat": ("/v1/chat/completions", "/chat/completions"),
    "messages": ("/v1/messages",),
    "embeddings": ("/v1/embeddings",),
}
"""Short name → the paths it covers."""
ENDPOINT_BY_PATH = {path: name for name, paths in ENDPOINTS.items() for path in paths}
_MAX_NAMES = 1000
_MAX_NAME_LENGTH = 256


def model_names(models: Iterable[str] | str | None) -> frozenset[str] | None:
    """An admin's model list (a list, or one comma-separated string) as the set a key stores; None = any."""
    if models is None:
        return None
    names = _split(models, "models")
    for name in names:
        if len(name) > _MAX_NAME_LENGTH:
            raise ValueError(f"model names are at most {_MAX_NAME_LENGTH} characters")
    return names


def endpoint_names(endpoints: Iterable[str] | str | None) -> frozenset[str] | None:
    """An admin's endpoint list (short names or paths) as the set of short names a key stores; None = any."""
    if endpoints is None:
        return None
    names = set()
    for given in _split(endpoints, "endpoints"):
        name = given if given in ENDPOINTS else ENDPOINT_BY_PATH.get(given)
        if name is None:
            allowed = ", ".join(f"{short} ({', '.join(paths)})" for short, paths in ENDPOINTS.items())
            raise ValueError(f"unknown endpoint {given!r}; endpoints are {allowed}")
        names.add(name)
    return frozenset(names)


def _split(values: Iterable[str] | str, what: str) -> frozenset[str]:
    items = values.split(",") if isinstance(values, str) else list(values)
    if not all(isinstance(v, str) for v in items):
        raise ValueError(f"{what} must be strings")
    names = frozenset(v.strip() for v in items if v.strip())
    if not names:
        raise ValueError(f"{what} must name at least one (to allow none, revoke the key)")
    if len(names) > _MAX_NAMES:
        raise ValueError(f"{what} may name at most {_MAX_NAMES}")
    return names


def check_expires_at(expires_at: float | None) -> None:
    if expires_at is not None and (
        isinstance(expires_at, bool) or not isinstance(expires_at, int | float) or not 0 <= expires_at <= 1e11
    ):
        raise ValueError("expires_at must be a unix time in seconds")


# SQLite stores integers in 64 bits; a larger one raised OverflowError (a 500) instead of a refusal
_MAX_INT = 2**63 - 1
_MAX_USD = 1e15


def check_limits(budget_usd: float | None, rpm: int | None, tpm: int | None) -> None:
    if budget_usd is not None and not 0 <= budget_usd <= _MAX_USD:
        raise ValueError(f"budget_usd must be between 0 and {_MAX_USD:g}")
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= _MAX_INT):
            raise ValueError(f"{name} must be a positive integer of at most {_MAX_INT}")


def row_to_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        key_hint=row["key_hint"],
        customer_id=row["customer_id"],
        team_id=row["team_id"],
        budget_usd=row["budget_usd"],
        spent_usd=row["spent_usd"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        budget_period=row["budget_period"],
        rpm=row["rpm"],
        tpm=row["tpm"],
        cache_enabled=bool(row["cache_enabled"]),
        semantic_cache=row["semantic_cache"],
        compression=None if row["compression"] is None else bool(row["compression"]),
        auto_route=bool(row["auto_route"]),
        models=names_from_column(row["models"]),
        endpoints=names_from_column(row["endpoints"]),
        expires_at=row["expires_at"],
    )


def row_to_team(row: sqlite3.Row) -> Team:
    return Team(
        row["team_id"],
        row["budget_usd"],
        row["period"],
        models=names_from_column(row["models"]),
        endpoints=names_from_column(row["endpoints"]),
    )


def names_to_column(names: frozenset[str] | None) -> str | None:
    """A name set as stored (a sorted JSON array; NULL = no restriction)."""
    return None if names is None else json.dumps(sorted(names))


def names_from_column(value: str | None) -> frozenset[str] | None:
    return None if value is None else frozenset(json.loads(value))


def key_json(key: ApiKey) -> dict[str, Any]:
    """The key as JSON-ready fields (name sets as sorted lists): the admin API's and ``apex keys list --json``."""
    fields = dataclasses.asdict(key)
    for name in ("models", "endpoints"):
        value = fields[name]
        fields[name] = None if value is None else sorted(value)
    return fields


def team_json(team: Team) -> dict[str, Any]:
    fields = dataclasses.asdict(team)
    for name in ("models", "endpoints"):
        value = fields[name]
        fields[name] = None if value is None else sorted(value)
    return fields
