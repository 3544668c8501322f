"""The key store's SQLite tables, and the columns added since the first release (migrated in place on open)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["connect", "migrate"]

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
    # access control: JSON arrays of names (NULL = any) and a unix expiry time (NULL = never)
    "models": "TEXT",
    "endpoints": "TEXT",
    "expires_at": "REAL",
}
_ADDED_TEAM_COLUMNS = {
    "models": "TEXT",
    "endpoints": "TEXT",
}


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.row_factory = sqlite3.Row
    return db


def migrate(db: sqlite3.Connection) -> None:
    """Create the tables, and add the columns a database from an earlier version lacks."""
    db.executescript(_SCHEMA)
    for table, added in (("api_keys", _ADDED_KEY_COLUMNS), ("teams", _ADDED_TEAM_COLUMNS)):
        have = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
        for column, decl in added.items():
            if column not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
