"""Compare the billing and savings marts of two warehouses built from the same events: MATCH or MISMATCH per table.

For a refactor of the dbt project that must not change a figure: build the project before and after on the same
events, then compare the two warehouses. Every column of every compared table must have the same name and type, in
the same order; the rows are joined on their id and must be the same rows, every column equal: exactly, except
doubles, which may differ by ``DOUBLE_TOLERANCE`` relative (a parallel sum's last bits; cents, counts, ids, text
and proof hashes are exact). The exit status is 1 on any mismatch.

    # one set of events + validation runs (tests/billing_marts/conftest.py: write_billing_data), then both builds
    env APEX_EVENTS_DIR=$DATA/events APEX_VALIDATION_RUNS_DIR=$DATA/validation_runs APEX_WAREHOUSE=$OUT/base.duckdb \\
        $BASE/.venv/bin/dbt build --project-dir $BASE/dbt --profiles-dir $BASE/dbt
    env APEX_EVENTS_DIR=$DATA/events APEX_VALIDATION_RUNS_DIR=$DATA/validation_runs APEX_WAREHOUSE=$OUT/new.duckdb \\
        .venv/bin/dbt build --project-dir dbt --profiles-dir dbt
    .venv/bin/python bench/compare_invoices.py $OUT/base.duckdb $OUT/new.duckdb
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

__all__ = ["TABLES", "compare", "main"]

TABLES: dict[str, tuple[str, ...]] = {
    "invoices": ("invoice_id",),
    "invoice_lines": ("line_id",),
    "invoice_line_events": ("line_id", "source_id"),
    "fct_vbp_invoice_lines": ("line_id",),
    "fct_bvm_charges": ("charge_id",),
    "fct_savings": ("savings_id",),
    "fct_llm_spend": ("event_id",),
    "agg_customer_daily": ("customer_id", "day"),
    "agg_user_metrics_hourly": ("hour", "customer_id", "end_user"),
}
"""The tables compared, with the columns that identify a row (the order rows are listed in)."""
DOUBLE_TOLERANCE = 1e-12
"""Relative tolerance of a double: DuckDB sums doubles in parallel, so the same project on the same events can
differ in the last bits of an aggregate from one build to the next (the old project against itself does)."""


def _columns(con: duckdb.DuckDBPyConnection, db: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = ? and table_schema = 'main' and table_name = ? order by ordinal_position",
        [db, table],
    ).fetchall()


def _differences(
    con: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...], columns: list[tuple[str, str]]
) -> tuple[int, int, dict[str, int], float]:
    """Rows only in base, rows only in new, per column the matched rows that differ, and the largest difference of
    a double. Doubles differ beyond ``DOUBLE_TOLERANCE`` (relative), every other type when not equal (nulls equal)."""
    on = " and ".join(f"b.{k} is not distinct from n.{k}" for k in key)
    checks = []
    for name, kind in columns:
        if kind == "DOUBLE":
            differs = (
                f"(b.{name} is null) <> (n.{name} is null) "
                f"or abs(b.{name} - n.{name}) > {DOUBLE_TOLERANCE} * greatest(1, abs(b.{name}))"
            )
        else:
            differs = f"b.{name} is distinct from n.{name}"
        checks.append(f"count(*) filter (where b_row and n_row and ({differs}))")
    doubles = [f"max(abs(b.{name} - n.{name}))" for name, kind in columns if kind == "DOUBLE"] or ["0"]
    row = con.execute(
        f"""
        select
            count(*) filter (where n_row is null), count(*) filter (where b_row is null),
            {", ".join(checks)}, greatest({", ".join(doubles)})
        from (select *, true as b_row from base.main.{table}) as b
        full join (select *, true as n_row from new.main.{table}) as n on {on}
        """
    ).fetchone()
    assert row is not None
    per_column = {name: int(n) for (name, _), n in zip(columns, row[2:-1], strict=True) if n}
    return int(row[0]), int(row[1]), per_column, float(row[-1] or 0.0)


def compare(base: Path, new: Path) -> bool:
    """Print one MATCH / MISMATCH line per table of ``TABLES``; True when every table matches."""
    con = duckdb.connect()
    con.execute(f"attach '{base}' as base (read_only)")
    con.execute(f"attach '{new}' as new (read_only)")
    all_match = True
    for table, key in TABLES.items():
        base_columns, new_columns = _columns(con, "base", table), _columns(con, "new", table)
        (base_rows,) = con.execute(f"select count(*) from base.main.{table}").fetchone() or (0,)
        (new_rows,) = con.execute(f"select count(*) from new.main.{table}").fetchone() or (0,)
        problems: list[str] = []
        largest = 0.0
        if base_columns != new_columns:
            problems.append(f"columns differ: base {base_columns} vs new {new_columns}")
        else:
            only_base, only_new, per_column, largest = _differences(con, table, key, new_columns)
            if only_base or only_new:
                problems.append(f"{only_base} row(s) only in base, {only_new} only in new (by {', '.join(key)})")
            if per_column:
                problems.append(f"matched rows differ in: {per_column}")
        verdict = "MISMATCH" if problems or base_rows != new_rows else "MATCH"
        all_match &= verdict == "MATCH"
        doubles = sum(kind == "DOUBLE" for _, kind in new_columns)
        print(
            f"{verdict:8} {table:24} rows base={base_rows:,} new={new_rows:,} columns={len(new_columns)} "
            f"(exact: {len(new_columns) - doubles}, doubles: {doubles}, largest double difference {largest:.1e})"
        )
        for problem in problems:
            print(f"         {problem}")
    con.close()
    return all_match


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path, help="warehouse built by the project before the change")
    parser.add_argument("new", type=Path, help="warehouse built by the project after the change")
    args = parser.parse_args(argv)
    ok = compare(args.base, args.new)
    print("MATCH: every compared table holds the same rows and columns" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
