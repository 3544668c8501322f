"""The billing ledger: a SQLite file beside the warehouse recording each Stripe push step and each check run.

Why SQLite and not a DuckDB table: the warehouse is rebuilt by dbt (which owns schema ``main`` and holds the
single DuckDB writer lock while it builds) and is opened read-only by the dashboard; the ledger must survive
rebuilds, be written one row at a time by a process that may crash between two Stripe calls, and commit each
step durably before the next call is made. SQLite (stdlib, WAL, one transaction per step) does exactly that.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["CheckRecord", "Ledger", "PushStep"]

_SCHEMA = """
create table if not exists stripe_push_steps (
    invoice_id text not null,
    step text not null check (step in ('invoice_created', 'item_added', 'finalized')),
    line_id text not null default '',
    stripe_id text not null,
    idempotency_key text not null,
    amount_cents integer,
    recorded_at text not null,
    primary key (invoice_id, step, line_id)
);
create table if not exists billing_check_runs (
    id integer primary key autoincrement,
    check_name text not null,
    warehouse text not null,
    warehouse_mtime_ns integer not null,
    passed integer not null,
    details text not null,
    checked_at text not null
);
"""


@dataclass(frozen=True)
class PushStep:
    invoice_id: str
    step: str
    line_id: str
    stripe_id: str
    idempotency_key: str
    amount_cents: int | None


@dataclass(frozen=True)
class CheckRecord:
    check_name: str
    warehouse_mtime_ns: int
    passed: bool
    details: list[dict[str, Any]]
    checked_at: str


class Ledger:
    """Opened per use (``with Ledger(path) as ledger``); every ``record_*`` commits before returning."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._con: sqlite3.Connection | None = None

    def __enter__(self) -> Ledger:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, isolation_level=None)
        self._con.execute("pragma journal_mode=wal")
        self._con.executescript(_SCHEMA)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._con is not None
        self._con.close()
        self._con = None

    @property
    def con(self) -> sqlite3.Connection:
        assert self._con is not None, "use the ledger as a context manager"
        return self._con

    # -- Stripe push steps -------------------------------------------------------------------------------

    def steps(self, invoice_id: str) -> dict[tuple[str, str], PushStep]:
        rows = self.con.execute(
            "select invoice_id, step, line_id, stripe_id, idempotency_key, amount_cents "
            "from stripe_push_steps where invoice_id = ?",
            (invoice_id,),
        ).fetchall()
        return {(r[1], r[2]): PushStep(*r) for r in rows}

    def record_step(self, step: PushStep) -> None:
        self.con.execute(
            "insert into stripe_push_steps values (?, ?, ?, ?, ?, ?, ?)",
            (
                step.invoice_id,
                step.step,
                step.line_id,
                step.stripe_id,
                step.idempotency_key,
                step.amount_cents,
                datetime.now(UTC).isoformat(),
            ),
        )

    def all_steps(self) -> list[PushStep]:
        rows = self.con.execute(
            "select invoice_id, step, line_id, stripe_id, idempotency_key, amount_cents from stripe_push_steps "
            "order by invoice_id, step, line_id"
        ).fetchall()
        return [PushStep(*r) for r in rows]

    # -- check runs --------------------------------------------------------------------------------------

    def record_check(self, record: CheckRecord, warehouse: Path) -> None:
        self.con.execute(
            "insert into billing_check_runs (check_name, warehouse, warehouse_mtime_ns, passed, details, checked_at) "
            "values (?, ?, ?, ?, ?, ?)",
            (
                record.check_name,
                str(warehouse),
                record.warehouse_mtime_ns,
                int(record.passed),
                json.dumps(record.details, default=str),
                record.checked_at,
            ),
        )

    def latest_checks(self, warehouse: Path) -> dict[str, CheckRecord]:
        rows = self.con.execute(
            "select check_name, warehouse_mtime_ns, passed, details, checked_at from billing_check_runs "
            "where warehouse = ? and id in (select max(id) from billing_check_runs where warehouse = ? "
            "group by check_name)",
            (str(warehouse), str(warehouse)),
        ).fetchall()
        return {r[0]: CheckRecord(r[0], r[1], bool(r[2]), json.loads(r[3]), r[4]) for r in rows}
