"""Virtual API keys and team budgets, stored in SQLite; keys are stored hashed.

A key is ``sk-apex-`` + 32 url-safe random bytes (256 bits). Only its SHA-256 is stored. A slow password hash
(bcrypt, argon2) exists to protect low-entropy secrets from guessing; a 256-bit random key cannot be guessed, so
a fast hash is as safe here and keeps verification one indexed read. The plain key is shown once, at creation or
rotation, and never stored or logged.

Rotation gives the key a new secret under the same ``key_id`` (budgets, spend and attribution carry over); the
old secret stays valid for a grace period, then is rejected. Revocation ends both at once.

Lifetime spend (``spent_usd``) is counted in memory on the request path and flushed by a background thread;
per-period budget spend lives in ``gateway.limits``. Databases written by earlier versions are migrated in place
(missing columns are added) when the store opens.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.limits.periods import check_period

__all__ = ["ApiKey", "KeyStore", "Team", "hash_key"]

KEY_PREFIX = "sk-apex-"
DEFAULT_GRACE_SECONDS = 24 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id       TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    key_hint     TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    team_id      TEXT,
    budget_usd   REAL CHECK (budget_usd IS NULL OR budget_usd >= 0),
    spent_usd    REAL NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE TABLE IF NOT EXISTS retired_key_hashes (
    key_hash     TEXT PRIMARY KEY,
    key_id       TEXT NOT NULL REFERENCES api_keys (key_id),
    expires_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS teams (
    team_id      TEXT PRIMARY KEY,
    budget_usd   REAL CHECK (budget_usd IS NULL OR budget_usd >= 0),
    period       TEXT NOT NULL DEFAULT 'total',
    created_at   TEXT NOT NULL
);
"""

# Columns added after the first release; a database from then gets them by ALTER TABLE (new ones too: one path).
_ADDED_KEY_COLUMNS = {
    "budget_period": "TEXT NOT NULL DEFAULT 'total'",
    "rpm": "INTEGER",
    "tpm": "INTEGER",
    "cache_enabled": "INTEGER NOT NULL DEFAULT 0",
    "semantic_cache": "TEXT CHECK (semantic_cache IS NULL OR semantic_cache IN ('off', 'on', 'shadow'))",
    "compression": "INTEGER",
    "auto_route": "INTEGER NOT NULL DEFAULT 0",
}

SEMANTIC_CACHE_MODES = ("off", "on", "shadow")

_UNSET: Any = object()


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _new_secret() -> tuple[str, str]:
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


def _check_semantic_mode(mode: str | None) -> None:
    if mode is not None and mode not in SEMANTIC_CACHE_MODES:
        raise ValueError(f"semantic_cache must be one of {', '.join(SEMANTIC_CACHE_MODES)} (got {mode!r})")


def _check_limits(budget_usd: float | None, rpm: int | None, tpm: int | None) -> None:
    if budget_usd is not None and budget_usd < 0:
        raise ValueError("budget_usd must be >= 0")
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name} must be a positive integer")


class KeyStore:
    def __init__(self, path: Path, *, cache_seconds: float = 5.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}
        # digest -> (cached at, key or None, unix time the secret stops working or None)
        self._cache: dict[str, tuple[float, ApiKey | None, float | None]] = {}
        self._team_cache: dict[str, tuple[float, Team | None]] = {}
        with self._connect() as db:
            db.executescript(_SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(api_keys)")}
            for column, decl in _ADDED_KEY_COLUMNS.items():
                if column not in have:
                    db.execute(f"ALTER TABLE api_keys ADD COLUMN {column} {decl}")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.row_factory = sqlite3.Row
        return db

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
    ) -> tuple[ApiKey, str]:
        """Create a key; returns the record and the plain key (shown once, never stored)."""
        _check_limits(budget_usd, rpm, tpm)
        _check_semantic_mode(semantic_cache)
        check_period(budget_period)
        plain, hint = _new_secret()
        key_id = "key_" + secrets.token_hex(8)
        with self._connect() as db:
            db.execute(
                "INSERT INTO api_keys (key_id, name, key_hash, key_hint, customer_id, team_id, budget_usd,"
                " created_at, budget_period, rpm, tpm, cache_enabled, semantic_cache, compression, auto_route)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key_id,
                    name,
                    hash_key(plain),
                    hint,
                    customer_id,
                    team_id,
                    budget_usd,
                    _now_iso(),
                    budget_period,
                    rpm,
                    tpm,
                    int(cache_enabled),
                    semantic_cache,
                    None if compression is None else int(compression),
                    int(auto_route),
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
                (key_id, name, hash_key(plain), hint, customer_id, _now_iso()),
            )

    def rotate(self, key_id: str, *, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> tuple[ApiKey, str, float] | None:
        """Give an active key a new secret. Returns (record, new plain key, unix time the old secret expires)."""
        if grace_seconds < 0:
            raise ValueError("grace_seconds must be >= 0")
        plain, hint = _new_secret()
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
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (_now_iso(), key_id)
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
    ) -> ApiKey | None:
        """Change a key's settings; arguments left out are kept, ``None`` clears a limit."""
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
            ).items()
            if v is not _UNSET
        }
        _check_limits(changes.get("budget_usd"), changes.get("rpm"), changes.get("tpm"))
        if "budget_period" in changes:
            check_period(changes["budget_period"])
        if "semantic_cache" in changes:
            _check_semantic_mode(changes["semantic_cache"])
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
        return [_row_to_key(r) for r in rows]

    def get(self, key_id: str) -> ApiKey | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return _row_to_key(row) if row else None

    # -- teams ----------------------------------------------------------------------------------------------

    def set_team(self, team_id: str, *, budget_usd: float | None, period: str = "total") -> Team:
        _check_limits(budget_usd, None, None)
        check_period(period)
        with self._connect() as db:
            db.execute(
                "INSERT INTO teams (team_id, budget_usd, period, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (team_id) DO UPDATE SET budget_usd = excluded.budget_usd, period = excluded.period",
                (team_id, budget_usd, period, _now_iso()),
            )
        self._forget_cached()
        return Team(team_id, budget_usd, period)

    def list_teams(self) -> builtins.list[Team]:
        with self._connect() as db:
            rows = db.execute("SELECT team_id, budget_usd, period FROM teams ORDER BY team_id").fetchall()
        return [Team(r["team_id"], r["budget_usd"], r["period"]) for r in rows]

    def team(self, team_id: str) -> Team | None:
        """The team's budget, cached like keys (``cache_seconds``)."""
        now = time.monotonic()
        hit = self._team_cache.get(team_id)
        if hit is not None and now - hit[0] < self._cache_seconds:
            return hit[1]
        with self._connect() as db:
            row = db.execute("SELECT team_id, budget_usd, period FROM teams WHERE team_id = ?", (team_id,)).fetchone()
        team = Team(row["team_id"], row["budget_usd"], row["period"]) if row else None
        self._team_cache[team_id] = (now, team)
        return team

    # -- request path ---------------------------------------------------------------------------------------

    def verify(self, plain: str) -> ApiKey | None:
        """The active key for ``plain``, or None. Cached for ``cache_seconds`` (revocation latency); a rotated
        secret's grace end is checked on every call, cached or not."""
        digest = hash_key(plain)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is None or now - hit[0] >= self._cache_seconds:
            hit = (now, *self._lookup(digest))
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[digest] = hit
        _, key, expires_at = hit
        if expires_at is not None and time.time() >= expires_at:
            return None
        return key

    def _lookup(self, digest: str) -> tuple[ApiKey | None, float | None]:
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
        key = _row_to_key(row) if row else None
        if key is None or not key.active:
            return None, None
        return key, expires_at

    def spent(self, key: ApiKey) -> float:
        """Lifetime spend known for ``key``: the stored total plus what is not flushed yet."""
        with self._lock:
            return key.spent_usd + self._pending.get(key.key_id, 0.0)

    def record_spend(self, key_id: str, usd: float) -> None:
        if usd <= 0:
            return
        with self._lock:
            self._pending[key_id] = self._pending.get(key_id, 0.0) + usd

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
        # cached records carry the old spent_usd; the pending amount now lives in the table
        self._cache.clear()


def _row_to_key(row: sqlite3.Row) -> ApiKey:
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
