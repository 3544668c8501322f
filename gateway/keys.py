"""Virtual API keys, stored hashed in SQLite, and the spend counted against their budgets.

A key is ``sk-apex-`` + 32 url-safe random bytes. Only its SHA-256 is stored: with 256 bits of entropy a fast
hash cannot be brute-forced, and lookup stays one indexed read. The plain key is shown once, at creation.

Spend is settled in memory on the request path and flushed to SQLite by a background thread (every second and at
shutdown), so no request waits on a disk write.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["ApiKey", "KeyStore", "hash_key"]

KEY_PREFIX = "sk-apex-"

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
"""


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


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

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyStore:
    def __init__(self, path: Path, *, cache_seconds: float = 5.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.row_factory = sqlite3.Row
        return db

    # -- administration -------------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        customer_id: str = "default",
        team_id: str | None = None,
        budget_usd: float | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key; returns the record and the plain key (shown once, never stored)."""
        if budget_usd is not None and budget_usd < 0:
            raise ValueError("budget_usd must be >= 0")
        plain = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        hint = plain[: len(KEY_PREFIX) + 4] + "…" + plain[-4:]
        with self._connect() as db:
            db.execute(
                "INSERT INTO api_keys (key_id, name, key_hash, key_hint, customer_id, team_id, budget_usd, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, name, hash_key(plain), hint, customer_id, team_id, budget_usd, now),
            )
        return self.get(key_id), plain  # type: ignore[return-value]

    def add_existing(self, plain: str, name: str, *, customer_id: str = "default", key_id: str | None = None) -> None:
        """Register a key chosen by the operator (benchmarks, fixed demo keys). Idempotent."""
        key_id = key_id or "key_" + hash_key(plain)[:16]
        now = datetime.now(UTC).isoformat(timespec="seconds")
        hint = plain[:4] + "…" + plain[-4:]
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO api_keys (key_id, name, key_hash, key_hint, customer_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, name, hash_key(plain), hint, customer_id, now),
            )

    def revoke(self, key_id: str) -> bool:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect() as db:
            cur = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (now, key_id)
            )
        self._cache.clear()
        return cur.rowcount == 1

    def list(self) -> list[ApiKey]:
        self.flush()
        with self._connect() as db:
            rows = db.execute("SELECT * FROM api_keys ORDER BY created_at, key_id").fetchall()
        return [_row_to_key(r) for r in rows]

    def get(self, key_id: str) -> ApiKey | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return _row_to_key(row) if row else None

    # -- request path ---------------------------------------------------------------------------------------

    def verify(self, plain: str) -> ApiKey | None:
        """The active key for ``plain``, or None. Cached for ``cache_seconds`` (revocation latency)."""
        digest = hash_key(plain)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self._cache_seconds:
            return hit[1]
        with self._connect() as db:
            row = db.execute("SELECT * FROM api_keys WHERE key_hash = ?", (digest,)).fetchone()
        key = _row_to_key(row) if row else None
        if key is not None and not key.active:
            key = None
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[digest] = (now, key)
        return key

    def spent(self, key: ApiKey) -> float:
        """Spend known for ``key``: the stored total plus what is not flushed yet."""
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
    )
