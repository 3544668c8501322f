"""Spend counters persisted from the write-ahead log, exactly once.

The spend the gateway counts in memory (a key's lifetime ``spent_usd``; the SQLite limit backend's budget
windows) reaches ``gateway.db`` only through here: each commit adds the charges of a run of WAL records *and*
records, in the same transaction, how far into each segment those records go (``wal_applied``). A restart
applies only the records past that point, so no charge is ever counted twice nor one of a logged event lost.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["SpendLedger", "SpendTotals"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS wal_applied (
    wal_dir  TEXT NOT NULL,
    segment  TEXT NOT NULL,
    offset   INTEGER NOT NULL,
    PRIMARY KEY (wal_dir, segment)
);
CREATE TABLE IF NOT EXISTS period_spend (
    scope          TEXT NOT NULL,
    scope_id       TEXT NOT NULL,
    period_window  TEXT NOT NULL,
    spent_usd      REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, scope_id, period_window)
);
"""


class SpendTotals:
    """Charges summed since the last commit, and the WAL offsets they reach."""

    __slots__ = ("keys", "offsets", "windows")

    def __init__(self) -> None:
        self.keys: dict[str, float] = {}
        self.windows: dict[tuple[str, str, str], float] = {}
        self.offsets: dict[str, int] = {}

    def add(self, key_id: str | None, usd: float, windows: Iterable[tuple[str, str, str, float]]) -> None:
        if key_id is not None and usd > 0:
            self.keys[key_id] = self.keys.get(key_id, 0.0) + usd
        for scope, scope_id, window, w_usd in windows:
            slot = (scope, scope_id, window)
            self.windows[slot] = self.windows.get(slot, 0.0) + w_usd

    def __bool__(self) -> bool:
        return bool(self.offsets or self.keys or self.windows)


class SpendLedger:
    def __init__(self, db_path: Path, wal_dir: Path) -> None:
        self.db_path = Path(db_path)
        self.wal_dir = str(Path(wal_dir).resolve())
        with contextlib.closing(self._connect()) as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def applied(self) -> dict[str, int]:
        """How far into each segment of this WAL the counters already go."""
        with contextlib.closing(self._connect()) as db:
            rows = db.execute("SELECT segment, offset FROM wal_applied WHERE wal_dir = ?", (self.wal_dir,))
            return {segment: offset for segment, offset in rows}

    def commit(self, totals: SpendTotals, *, forget: Iterable[str] = ()) -> None:
        """Add ``totals`` to the counters and move the applied offsets, atomically; drop retired segments' rows."""
        with contextlib.closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                if totals.keys:
                    db.executemany(
                        "UPDATE api_keys SET spent_usd = spent_usd + ? WHERE key_id = ?",
                        [(usd, key_id) for key_id, usd in totals.keys.items()],
                    )
                if totals.windows:
                    db.executemany(
                        "INSERT INTO period_spend (scope, scope_id, period_window, spent_usd) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT DO UPDATE SET spent_usd = spent_usd + excluded.spent_usd",
                        [(*slot, usd) for slot, usd in totals.windows.items()],
                    )
                db.executemany(
                    "INSERT INTO wal_applied (wal_dir, segment, offset) VALUES (?, ?, ?)"
                    " ON CONFLICT DO UPDATE SET offset = excluded.offset",
                    [(self.wal_dir, seg, off) for seg, off in totals.offsets.items()],
                )
                db.executemany(
                    "DELETE FROM wal_applied WHERE wal_dir = ? AND segment = ?", [(self.wal_dir, s) for s in forget]
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def forget(self, segments: Mapping[str, int] | Iterable[str]) -> None:
        self.commit(SpendTotals(), forget=list(segments))
