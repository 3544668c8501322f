"""Short-lived, read-only access to the dbt-built DuckDB warehouse.

DuckDB allows one writer process per file and dbt writes this one, so every read opens a read-only
connection, fetches, and closes at once; nothing here ever creates or writes the file.

Failures are raised as one small tree, rendered by the app as messages rather than stack traces::

    WarehouseUnavailable
    ├── WarehouseMissing    the file does not exist (nothing materialized yet)
    ├── WarehouseBusy       a writer (a dbt build) holds the file lock
    └── WarehouseNotBuilt   the file exists but the dashboard's tables are missing or empty
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

__all__ = [
    "SAVINGS_TABLE",
    "SCHEMA",
    "SPEND_TABLE",
    "USER_HOURLY_TABLE",
    "WarehouseBusy",
    "WarehouseMissing",
    "WarehouseNotBuilt",
    "WarehouseUnavailable",
    "check_ready",
    "read",
]

SCHEMA = "main"
"""dbt's target schema in the DuckDB warehouse."""
SPEND_TABLE = f"{SCHEMA}.fct_llm_spend"
USER_HOURLY_TABLE = f"{SCHEMA}.agg_user_metrics_hourly"
SAVINGS_TABLE = f"{SCHEMA}.fct_savings"
"""Savings per request x lever with their verification status; read by the Optimizers tab only, so the spend
page works on a warehouse without it."""
_REQUIRED_TABLES = ("fct_llm_spend", "agg_user_metrics_hourly")


class WarehouseUnavailable(Exception):
    """The warehouse cannot answer right now; the message says why and what to do."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


class WarehouseMissing(WarehouseUnavailable):
    pass


class WarehouseBusy(WarehouseUnavailable):
    pass


class WarehouseNotBuilt(WarehouseUnavailable):
    pass


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def read(path: Path, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[pl.DataFrame]:
    """Run ``queries`` (SQL, parameters) on one read-only connection that is closed before returning."""
    if not path.is_file():
        raise WarehouseMissing(path, f"No warehouse at {path}.")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if _is_lock_conflict(exc):
            raise WarehouseBusy(path, f"{path} is locked by a writer (a dbt build is running).") from exc
        raise
    try:
        return [con.sql(sql, params=list(params)).pl() for sql, params in queries]
    except duckdb.CatalogException as exc:
        # dbt swaps tables in place; a table can vanish for a moment mid-build.
        raise WarehouseNotBuilt(path, f"{path}: {exc}") from exc
    finally:
        con.close()


def check_ready(path: Path) -> int:
    """Return the number of request rows, or raise if the dashboard's tables are missing or empty."""
    placeholders = ", ".join("?" for _ in _REQUIRED_TABLES)
    (tables,) = read(
        path,
        [
            (
                f"select table_name from information_schema.tables "
                f"where table_schema = ? and table_name in ({placeholders})",
                [SCHEMA, *_REQUIRED_TABLES],
            )
        ],
    )
    missing = sorted(set(_REQUIRED_TABLES) - set(tables["table_name"].to_list()))
    if missing:
        raise WarehouseNotBuilt(path, f"{path} has no {', '.join(f'{SCHEMA}.{t}' for t in missing)} yet.")
    (count,) = read(path, [(f"select count(*) as n from {SPEND_TABLE}", [])])
    rows = int(count["n"][0])
    if rows == 0:
        raise WarehouseNotBuilt(path, f"{SPEND_TABLE} in {path} has no rows yet.")
    return rows
