"""Export files match the marts in every format, are deterministic, and are refused when they must be."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from contracts.console import app
from dagster_project.billing.errors import BillingChecksFailed, NoInvoicesForPeriod
from dagster_project.billing.export import export_period
from dagster_project.billing.ledger import Ledger
from dagster_project.billing.marts import BILLING_TABLES, rows_for_period
from dagster_project.billing.stripe_push import push_period
from tests.billing.world import PERIOD, World, execute


def _normalise(rows: list[dict]) -> list[dict]:
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export_files_match_the_tables(world: World, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    result = export_period(world.warehouse, world.ledger, PERIOD, out, [fmt])  # type: ignore[list-item]
    expected = rows_for_period(world.warehouse, PERIOD)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}-{PERIOD}.{fmt}" for t in BILLING_TABLES)
    for table in BILLING_TABLES:
        path = result.files[f"{table}.{fmt}"]
        if fmt == "parquet":
            got = pq.read_table(path).to_pylist()
            assert got == expected[table]
        elif fmt == "json":
            assert json.loads(path.read_text()) == _normalise(expected[table])
        else:
            with path.open(newline="") as f:
                got_csv = list(csv.DictReader(f))
            want = [
                {k: "" if v is None else (repr(v) if isinstance(v, float) else str(v)) for k, v in r.items()}
                for r in _normalise(expected[table])
            ]
            assert got_csv == want
        assert result.rows[table] == len(expected[table]) > 0
    # cents stay integers in every format
    lines = expected["invoice_lines"]
    assert all(isinstance(ln["amount_cents"], int) for ln in lines)


def test_export_is_deterministic(world: World, tmp_path: Path) -> None:
    a = export_period(world.warehouse, world.ledger, PERIOD, tmp_path / "a", ["csv", "parquet", "json"])
    b = export_period(world.warehouse, world.ledger, PERIOD, tmp_path / "b", ["csv", "parquet", "json"])
    for key, path in a.files.items():
        assert path.read_bytes() == b.files[key].read_bytes(), key


def test_export_refuses_a_period_without_invoices(world: World, tmp_path: Path) -> None:
    with pytest.raises(NoInvoicesForPeriod, match="2025-01"):
        export_period(world.warehouse, world.ledger, "2025-01", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _break_totals(world: World) -> None:
    execute(world.warehouse, "update invoices set total_cents = total_cents + 1 where status = 'ready'")


def test_a_failed_blocking_check_stops_export_and_push(world: World, tmp_path: Path) -> None:
    _break_totals(world)
    with pytest.raises(BillingChecksFailed, match="billing_invoices_quality"):
        export_period(world.warehouse, world.ledger, PERIOD, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(BillingChecksFailed):
        push_period(world.warehouse, world.ledger, PERIOD)
    with Ledger(world.ledger) as ledger:
        latest = ledger.latest_checks(world.warehouse)
    assert not latest["billing_invoices_quality"].passed and latest["billing_invoice_lines_quality"].passed
    assert any(
        f["expectation"] == "expect_column_pair_values_to_be_equal" for f in latest["billing_invoices_quality"].details
    )


def test_negative_or_duplicate_lines_fail_the_lines_check(world: World, tmp_path: Path) -> None:
    con = duckdb.connect(str(world.warehouse))
    try:
        line = con.execute("select * from invoice_lines limit 1").fetchone()
        placeholders = ", ".join("?" * len(line))
        con.execute(f"insert into invoice_lines values ({placeholders})", list(line))
        con.execute(
            "update invoice_lines set amount_cents = -5 where line_id = (select max(line_id) from invoice_lines)"
        )
    finally:
        con.close()
    with pytest.raises(BillingChecksFailed, match="billing_invoice_lines_quality") as err:
        export_period(world.warehouse, world.ledger, PERIOD, tmp_path / "out")
    assert "expect_column_values_to_be_unique" in str(err.value)
    assert "expect_column_values_to_be_between" in str(err.value)


def test_a_recorded_failure_blocks_until_the_marts_change(world: World, tmp_path: Path) -> None:
    """The latest recorded check run decides; a rebuilt warehouse (new mtime) is checked afresh."""
    _break_totals(world)
    with pytest.raises(BillingChecksFailed):
        export_period(world.warehouse, world.ledger, PERIOD, tmp_path / "out")
    with pytest.raises(BillingChecksFailed):  # from the record, not a new run
        export_period(world.warehouse, world.ledger, PERIOD, tmp_path / "out")
    execute(world.warehouse, "update invoices set total_cents = total_cents - 1 where status = 'ready'")
    assert export_period(world.warehouse, world.ledger, PERIOD, tmp_path / "out").files


def test_cli_export(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app, ["invoices", "export", "--period", PERIOD, "--format", "parquet", "--out", str(tmp_path / "o")]
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "o" / f"invoice_lines-{PERIOD}.parquet").is_file()
    default = runner.invoke(app, ["invoices", "export", "--period", PERIOD])
    assert default.exit_code == 0, default.output
    assert (world.root / "data" / "exports" / PERIOD / f"invoices-{PERIOD}.csv").is_file()

    empty = runner.invoke(app, ["invoices", "export", "--period", "2025-01"])
    assert empty.exit_code == 2 and "no invoices for period 2025-01" in empty.output
    bad = runner.invoke(app, ["invoices", "export", "--period", "2026-13"])
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output

    _break_totals(world)
    refused = runner.invoke(app, ["invoices", "export", "--period", PERIOD, "--format", "json"])
    assert refused.exit_code == 2 and "blocking billing check" in refused.output
