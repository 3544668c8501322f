"""What a virtual key and a team are, how a key's secret is made and hashed, and the checks on their settings.

A key is ``sk-apex-`` + 32 url-safe random bytes (256 bits). Only its SHA-256 is stored. A slow password hash
(bcrypt, argon2) exists to protect low-entropy secrets from guessing; a 256-bit random key cannot be guessed, so
a fast hash is as safe here and keeps verification one indexed read.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["KEY_PREFIX", "SEMANTIC_CACHE_MODES", "ApiKey", "Team", "hash_key", "row_to_key"]

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

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class Team:
    team_id: str
    budget_usd: float | None
    period: str = "total"


def check_semantic_mode(mode: str | None) -> None:
    if mode is not None and mode not in SEMANTIC_CACHE_MODES:
        raise ValueError(f"semantic_cache must be one of {', '.join(SEMANTIC_CACHE_MODES)} (got {mode!r})")


def check_limits(budget_usd: float | None, rpm: int | None, tpm: int | None) -> None:
    if budget_usd is not None and budget_usd < 0:
        raise ValueError("budget_usd must be >= 0")
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name} must be a positive integer")


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
    )
