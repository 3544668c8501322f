"""The key store: virtual keys and team budgets in SQLite (stored hashed), and the request path's cached lookups.

Rotation gives the key a new secret under the same ``key_id`` (budgets, spend and attribution carry over); the
old secret stays valid for a grace period, then is rejected. Revocation ends both at once. The plain key is shown
once, at creation or rotation, and never stored or logged.

Lifetime spend (``spent_usd``) reaches this table only from the event write-ahead log (``gateway.events.ledger``,
exactly once); per-period budget spend lives in ``gateway.limits``.

(Over 400 lines: the SQLite store and the request path's cached lookups share one lock and one cache; records,
schema and access checks are their own modules.)
"""

from __future__ import annotations

import builtins
import enum
import math
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gateway.keys.records import (
    ApiKey,
    Team,
    check_expires_at,
    check_limits,
    check_semantic_mode,
    endpoint_names,
    hash_key,
    model_names,
    names_to_column,
    new_secret,
    now_iso,
    row_to_key,
    row_to_team,
)
from gateway.keys.schema import connect, migrate
from gateway.limits.periods import check_period

__all__ = ["DEFAULT_GRACE_SECONDS", "MISS", "KeyStore"]

DEFAULT_GRACE_SECONDS = 24 * 3600.0
_MAX_CACHED = 100_000


class _Miss(enum.Enum):
    MISS = "miss"


MISS = _Miss.MISS
"""``KeyStore.cached``: the caches do not know the key; ``lookup`` must ask the database."""

_UNSET: Any = object()


class KeyStore:
    def __init__(
        self,
        path: Path,
        *,
        cache_seconds: float = 5.0,
        unknown_cache_seconds: float = 30.0,
        unknown_cache_size: int = 100_000,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cache_seconds = cache_seconds
        self._unknown_seconds = unknown_cache_seconds
        self._unknown_size = unknown_cache_size
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}
        # digest -> (cached at, key, unix time the secret stops working or None); valid keys only
        self._cache: dict[str, tuple[float, ApiKey, float | None]] = {}
        # digest -> when it matched no key (monotonic), oldest first; bounded by ``unknown_cache_size``
        self._unknown: dict[str, float] = {}
        # digests that were a valid key in this process (bounded): they skip the failed-auth throttle's gate
        self._seen_valid: dict[str, None] = {}
        self._team_cache: dict[str, tuple[float, Team | None]] = {}
        with self._connect() as db:
            migrate(db)

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path)

    def _forget_cached(self) -> None:
        self._cache.clear()
        self._team_cache.clear()

    # -- keys -----------------------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        customer_id: str = "default",
        team_id: str | None = None,
        budget_usd: float | None = None,
        budget_period: str = "total",
        rpm: int | None = None,
        tpm: int | None = None,
        cache_enabled: bool = False,
        semantic_cache: str | None = None,
        compression: bool | None = None,
        auto_route: bool = False,
        models: Iterable[str] | None = None,
        endpoints: Iterable[str] | None = None,
        expires_at: float | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key; returns the record and the plain key (shown once, never stored). ``models`` and
        ``endpoints`` limit what it may call (None = any); it stops working at ``expires_at`` (unix time)."""
        check_limits(budget_usd, rpm, tpm)
        check_semantic_mode(semantic_cache)
        check_period(budget_period)
        check_expires_at(expires_at)
        allowed_models, allowed_endpoints = model_names(models), endpoint_names(endpoints)
        plain, hint = new_secret()
        key_id = "key_" + secrets.token_hex(8)
        with self._connect() as db:
            db.execute(
                "INSERT INTO api_keys (key_id, name, key_hash, key_hint, customer_id, team_id, budget_usd,"
                " created_at, budget_period, rpm, tpm, cache_enabled, semantic_cache, compression, auto_route,"
                " models, endpoints, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key_id,
                    name,
                    hash_key(plain),
                    hint,
                    customer_id,
                    team_id,
                    budget_usd,
                    now_iso(),
                    budget_period,
                    rpm,
                    tpm,
                    int(cache_enabled),
                    semantic_cache,
                    None if compression is None else int(compression),
                    int(auto_route),
                    names_to_column(allowed_models),
                    names_to_column(allowed_endpoints),
                    expires_at,
                ),
            )
        return self.get(key_id), plain  # type: ignore[return-value]

    def add_existing(self, plain: str, name: str, *, customer_id: str = "default", key_id: str | None = None) -> None:
        """Register a key chosen by the operator (benchmarks, fixed demo keys). Idempotent."""
        key_id = key_id or "key_" + hash_key(plain)[:16]
        hint = plain[:4] + "…" + plain[-4:]
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO api_keys (key_id, name, key_hash, key_hint, customer_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, name, hash_key(plain), hint, customer_id, now_iso()),
            )
        self._unknown.pop(hash_key(plain), None)

    def rotate(self, key_id: str, *, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> tuple[ApiKey, str, float] | None:
        """Give an active key a new secret. Returns (record, new plain key, unix time the old secret expires)."""
        if grace_seconds < 0:
            raise ValueError("grace_seconds must be >= 0")
        plain, hint = new_secret()
        expires_at = time.time() + grace_seconds
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT key_hash FROM api_keys WHERE key_id = ? AND revoked_at IS NULL", (key_id,)
            ).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return None
            if grace_seconds > 0:
                db.execute(
                    "INSERT OR REPLACE INTO retired_key_hashes (key_hash, key_id, expires_at) VALUES (?, ?, ?)",
                    (row["key_hash"], key_id, expires_at),
                )
            db.execute(
                "UPDATE api_keys SET key_hash = ?, key_hint = ? WHERE key_id = ?", (hash_key(plain), hint, key_id)
            )
            db.execute("DELETE FROM retired_key_hashes WHERE expires_at < ?", (time.time(),))
            db.execute("COMMIT")
        self._forget_cached()
        return self.get(key_id), plain, expires_at  # type: ignore[return-value]

    def revoke(self, key_id: str) -> bool:
        with self._connect() as db:
            cur = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (now_iso(), key_id)
            )
            db.execute("DELETE FROM retired_key_hashes WHERE key_id = ?", (key_id,))
        self._forget_cached()
        return cur.rowcount == 1

    def update(
        self,
        key_id: str,
        *,
        name: str = _UNSET,
        team_id: str | None = _UNSET,
        budget_usd: float | None = _UNSET,
        budget_period: str = _UNSET,
        rpm: int | None = _UNSET,
        tpm: int | None = _UNSET,
        cache_enabled: bool = _UNSET,
        semantic_cache: str | None = _UNSET,
        compression: bool | None = _UNSET,
        auto_route: bool = _UNSET,
        models: Iterable[str] | None = _UNSET,
        endpoints: Iterable[str] | None = _UNSET,
        expires_at: float | None = _UNSET,
    ) -> ApiKey | None:
        """Change a key's settings; arguments left out are kept, ``None`` clears a limit (or a model, endpoint
        list or expiry)."""
        changes: dict[str, Any] = {
            k: v
            for k, v in dict(
                name=name,
                team_id=team_id,
                budget_usd=budget_usd,
                budget_period=budget_period,
                rpm=rpm,
                tpm=tpm,
                cache_enabled=cache_enabled,
                semantic_cache=semantic_cache,
                compression=compression,
                auto_route=auto_route,
                models=models,
                endpoints=endpoints,
                expires_at=expires_at,
            ).items()
            if v is not _UNSET
        }
        check_limits(changes.get("budget_usd"), changes.get("rpm"), changes.get("tpm"))
        if "budget_period" in changes:
            check_period(changes["budget_period"])
        if "semantic_cache" in changes:
            check_semantic_mode(changes["semantic_cache"])
        if "models" in changes:
            changes["models"] = names_to_column(model_names(changes["models"]))
        if "endpoints" in changes:
            changes["endpoints"] = names_to_column(endpoint_names(changes["endpoints"]))
        if "expires_at" in changes:
            check_expires_at(changes["expires_at"])
        for flag in ("cache_enabled", "auto_route"):
            if flag in changes:
                changes[flag] = int(bool(changes[flag]))
        if changes.get("compression") is not None:
            changes["compression"] = int(bool(changes["compression"]))
        if changes:
            assigns = ", ".join(f"{column} = ?" for column in changes)  # column names come from the signature
            with self._connect() as db:
                db.execute(f"UPDATE api_keys SET {assigns} WHERE key_id = ?", (*changes.values(), key_id))
            self._forget_cached()
        return self.get(key_id)

    def list(self) -> list[ApiKey]:
        self.flush()
        with self._connect() as db:
            rows = db.execute("SELECT * FROM api_keys ORDER BY created_at, key_id").fetchall()
        return [row_to_key(r) for r in rows]

    def get(self, key_id: str) -> ApiKey | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return row_to_key(row) if row else None

    # -- teams ----------------------------------------------------------------------------------------------

    def set_team(
        self,
        team_id: str,
        *,
        budget_usd: float | None,
        period: str = "total",
        models: Iterable[str] | None = _UNSET,
        endpoints: Iterable[str] | None = _UNSET,
    ) -> Team:
        """Set a team's budget and period; its model and endpoint lists change only when given (None = any)."""
        check_limits(budget_usd, None, None)
        check_period(period)
        columns = {"budget_usd": budget_usd, "period": period}
        if models is not _UNSET:
            columns["models"] = names_to_column(model_names(models))
        if endpoints is not _UNSET:
            columns["endpoints"] = names_to_column(endpoint_names(endpoints))
        names = ", ".join(columns)  # column names come from the signature
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
        with self._connect() as db:
            db.execute(
                f"INSERT INTO teams (team_id, created_at, {names}) VALUES (?, ?{', ?' * len(columns)})"
                f" ON CONFLICT (team_id) DO UPDATE SET {updates}",
                (team_id, now_iso(), *columns.values()),
            )
        self._forget_cached()
        team = self.get_team(team_id)
        assert team is not None
        return team

    def get_team(self, team_id: str) -> Team | None:
        """The team as stored (uncached; the request path uses ``team``)."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM teams WHERE team_id = ?", (team_id,)).fetchone()
        return row_to_team(row) if row else None

    def list_teams(self) -> builtins.list[Team]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM teams ORDER BY team_id").fetchall()
        return [row_to_team(r) for r in rows]

    def team(self, team_id: str) -> Team | None:
        """The team's budget, cached like keys (``cache_seconds``)."""
        now = time.monotonic()
        hit = self._team_cache.get(team_id)
        if hit is not None and now - hit[0] < self._cache_seconds:
            return hit[1]
        team = self.get_team(team_id)
        self._team_cache[team_id] = (now, team)
        return team

    # -- request path ---------------------------------------------------------------------------------------

    def verify(self, plain: str) -> ApiKey | None:
        """The active key for ``plain``, or None (synchronous: the CLI and tests; the gateway uses ``cached``,
        then ``lookup`` in a thread). Cached for ``cache_seconds`` (revocation latency); a rotated secret's grace
        end is checked on every call, cached or not."""
        digest = hash_key(plain)
        found = self.cached(digest)
        if found is MISS:
            found = self.remember(digest, self.lookup(digest))
        return found

    def cached(self, digest: str) -> ApiKey | None | _Miss:
        """What the in-memory caches know of the key with hash ``digest``: the key, None (unknown, revoked or past
        its grace end), or ``MISS`` (ask ``lookup``). No I/O: this is the request path's hot path."""
        hit = self._cache.get(digest)
        if hit is not None:
            at, key, expires_at = hit
            if time.monotonic() - at < self._cache_seconds:
                return key if expires_at is None or time.time() < expires_at else None
        else:
            at = self._unknown.get(digest, -math.inf)
            if time.monotonic() - at < self._unknown_seconds:
                return None
        return MISS

    def seen_valid(self, digest: str) -> bool:
        """Whether ``digest`` was a valid key in this process (its cache entry may be stale or cleared)."""
        return digest in self._seen_valid

    def lookup(self, digest: str) -> tuple[ApiKey | None, float | None]:
        """The active key with hash ``digest`` and when its secret stops working: blocking SQLite, safe from any
        thread (the gateway runs it in one). ``remember`` caches what it found."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM api_keys WHERE key_hash = ?", (digest,)).fetchone()
            expires_at = None
            if row is None:
                row = db.execute(
                    "SELECT k.*, r.expires_at AS grace_ends FROM retired_key_hashes r"
                    " JOIN api_keys k USING (key_id) WHERE r.key_hash = ?",
                    (digest,),
                ).fetchone()
                expires_at = row["grace_ends"] if row else None
        key = row_to_key(row) if row else None
        if key is None or not key.active:
            return None, None
        return key, expires_at

    def remember(self, digest: str, found: tuple[ApiKey | None, float | None]) -> ApiKey | None:
        """Cache what ``lookup`` found for ``digest`` (from the event loop's thread); the key if it is usable."""
        key, expires_at = found
        now = time.monotonic()
        if key is None:
            self._cache.pop(digest, None)
            if self._unknown_seconds > 0 and self._unknown_size > 0:
                self._unknown.pop(digest, None)  # re-inserted last: the dict stays oldest first
                if len(self._unknown) >= self._unknown_size:
                    del self._unknown[next(iter(self._unknown))]
                self._unknown[digest] = now
            return None
        self._unknown.pop(digest, None)
        if len(self._cache) > _MAX_CACHED:
            self._cache.clear()
        self._cache[digest] = (now, key, expires_at)
        if len(self._seen_valid) > _MAX_CACHED:
            self._seen_valid.clear()
        self._seen_valid[digest] = None
        return key if expires_at is None or time.time() < expires_at else None

    def spent(self, key: ApiKey) -> float:
        """Lifetime spend known for ``key``: the stored total plus what is not flushed yet."""
        with self._lock:
            return key.spent_usd + self._pending.get(key.key_id, 0.0)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        with self._connect() as db:
            db.executemany(
                "UPDATE api_keys SET spent_usd = spent_usd + ? WHERE key_id = ?",
                [(usd, key_id) for key_id, usd in pending.items()],
            )
        # cached records carry the old spent_usd; the pending amount now lives in the table. Marked stale rather
        # than dropped: the next call refreshes them (off the event loop) and ``seen_valid`` still knows them.
        self._cache = {digest: (-math.inf, key, ends) for digest, (_, key, ends) in self._cache.items()}
