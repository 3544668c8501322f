"""Read-only access to the dbt-built billing marts (``invoices``, ``invoice_lines``, ``invoice_line_events``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from dagster_project.billing.errors import BillingError, MartsMissing, NoInvoicesForPeriod

__all__ = ["BILLING_TABLES", "connect_marts", "fetch_dicts", "parse_period", "period_tables", "rows_for_period"]

BILLING_TABLES = ("invoices", "invoice_lines", "invoice_line_events")
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

# Deterministic row order for every table (export files, plans and proofs all read through these).
_QUERIES = {
    "invoices": "select * from main.invoices where billing_period = ? order by invoice_id",
    "invoice_lines": "select * from main.invoice_lines where billing_period = ? order by invoice_id, line_id",
    "invoice_line_events": (
        "select e.* from main.invoice_line_events e join main.invoice_lines l using (line_id) "
        "where l.billing_period = ? order by e.line_id, e.source_kind, e.source_id"
    ),
}


def parse_period(period: str) -> date:
    """``'2026-11'`` → the first day of that month; anything else is a BillingError naming the format."""
    m = _PERIOD.match(period)
    if m is None:
        raise BillingError(f"period {period!r} is not a month in the form YYYY-MM (e.g. 2026-11)")
    return date(int(m.group(1)), int(m.group(2)), 1)


@contextmanager
def connect_marts(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection; MartsMissing when the file or any billing table is absent."""
    if not Path(warehouse).is_file():
        raise MartsMissing(f"warehouse {warehouse} does not exist: run the pipeline (dbt build) first")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        present = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'main'"
            ).fetchall()
        }
        missing = [t for t in BILLING_TABLES if t not in present]
        if missing:
            raise MartsMissing(
                f"warehouse {warehouse} has no billing table(s) {', '.join(missing)}: run `dbt build` first"
            )
        yield con
    finally:
        con.close()


def period_tables(con: duckdb.DuckDBPyConnection, period: str) -> dict[str, pa.Table]:
    """The three billing tables restricted to ``period``; NoInvoicesForPeriod when it has no invoices."""
    parse_period(period)
    tables = {name: con.sql(sql, params=[period]).to_arrow_table() for name, sql in _QUERIES.items()}
    if tables["invoices"].num_rows == 0:
        raise NoInvoicesForPeriod(f"no invoices for period {period} in the warehouse; nothing to do")
    return tables


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.cursor()
    try:
        cur.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        cur.close()


def rows_for_period(warehouse: Path, period: str) -> dict[str, list[dict[str, Any]]]:
    with connect_marts(warehouse) as con:
        return {name: t.to_pylist() for name, t in period_tables(con, period).items()}
