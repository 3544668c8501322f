"""Every line re-derives from the raw Parquet files to the cent; a tampered file or a foreign price table does not."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from contracts.console import app
from dagster_project.billing.marts import rows_for_period
from dagster_project.billing.proof import cents_half_up, proof_hash, prove_lines
from tests.billing.world import FIXTURE_PRICES, PERIOD, World, make_world


def _prove(world: World, **kw):  # type: ignore[no-untyped-def]
    return prove_lines(
        world.warehouse,
        world.events_dir,
        price_tables=[FIXTURE_PRICES],
        validation_runs_dir=world.runs_dir,
        instance_prices=world.seed,
        **kw,
    )


@pytest.mark.parametrize("period", ["2026-10", PERIOD])
def test_every_line_of_the_period_recomputes_to_the_cent(tmp_path, period: str) -> None:
    world = make_world(tmp_path, unpriced_customer="cust_globex")
    lines = rows_for_period(world.warehouse, period)["invoice_lines"]
    proofs = _prove(world, period=period)
    assert len(proofs) == len(lines) > 0
    for p in proofs:
        assert p.matches, (p.line_id, p.mismatch_reasons())
        assert p.recomputed_cents == p.expected_cents
    by_kind = {(p.line_type, p.lever) for p in proofs}
    if period == PERIOD:
        assert by_kind == {("vbp", "cache"), ("vbp", "routing"), ("vbp", "compression"), ("bvm", None)}
        assert sum(p.expected_cents for p in proofs) > 100
        assert any(p.notes and "x9.mystery" in p.notes[0] for p in proofs)  # the blocked BVM line, confirmed


@pytest.mark.parametrize(
    "usd",
    [0.005, 0.0049999999, 1.005, 0.0, 12.344999999999999, 2.675, 0.015, 123456.785, 1e-13, 0.1 + 0.2],
    ids=["half-cent", "below-half", "float-1.005", "zero", "fixes-to-half", "2.675", "0.015", "large", "tiny", "0.3"],
)
def test_cents_round_half_up_exactly_like_the_marts_macro(usd: float) -> None:
    # dbt/macros/money.sql usd_to_cents, evaluated by DuckDB
    sql = "select cast(round(cast(? as decimal(38, 12)) * 100, 0) as bigint)"
    con = duckdb.connect()
    assert cents_half_up(usd) == con.execute(sql, [usd]).fetchone()[0]


def test_a_tampered_event_file_makes_the_proof_mismatch(world: World) -> None:
    path = next(p for p in sorted(world.events_dir.glob("date=2026-11-*/**/*.parquet")))
    table = pq.read_table(path)
    tokens = pc.multiply(table["prompt_tokens"], pa.scalar(2, pa.int64()))
    pq.write_table(table.set_column(table.schema.get_field_index("prompt_tokens"), "prompt_tokens", tokens), path)
    tampered_ids = set(table["event_id"].to_pylist())

    proofs = _prove(world, period=PERIOD)
    rows = rows_for_period(world.warehouse, PERIOD)["invoice_line_events"]
    touched = {r["line_id"] for r in rows if r["source_id"] in tampered_ids}
    mismatched = {p.line_id for p in proofs if not p.matches}
    # compression savings ignore prompt tokens: the cache/routing lines with a tampered event fail
    assert mismatched and mismatched <= touched
    reasons = next(p for p in proofs if not p.matches).mismatch_reasons()
    assert any("recomputed" in r for r in reasons)


def test_a_deleted_event_is_named(world: World) -> None:
    path = next(p for p in sorted(world.events_dir.glob("date=2026-11-*/**/*.parquet")))
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)
    missing = table["event_id"][0].as_py()
    reasons = [r for p in _prove(world, period=PERIOD) for r in p.mismatch_reasons()]
    assert any(missing in r and "not in any Parquet file" in r for r in reasons)


def test_a_different_price_table_version_is_reported(world: World) -> None:
    (proof,) = prove_lines(
        world.warehouse,
        world.events_dir,
        [_vbp_line(world)["line_id"]],
        price_tables=[],
    )
    assert not proof.matches
    assert any(FIXTURE_PRICES.version in r and "needed" in r for r in proof.problems)


def test_proof_hash_is_sha256_of_sorted_ids() -> None:
    import hashlib

    assert proof_hash(["b", "a"]) == hashlib.sha256(b"a,b").hexdigest()


def _vbp_line(world: World) -> dict:
    return next(ln for ln in rows_for_period(world.warehouse, PERIOD)["invoice_lines"] if ln["line_type"] == "vbp")


def test_apex_proof_cli_exit_codes(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = rows_for_period(world.warehouse, PERIOD)["invoice_lines"]
    bvm = next(ln for ln in lines if ln["line_type"] == "bvm" and ln["status"] == "billable")
    runner = CliRunner()
    # the CLI reads the repo's seed; the fixture's m7i.large price is the same list price
    ok = runner.invoke(app, ["proof", bvm["line_id"]])
    assert ok.exit_code == 0, ok.output
    assert "MATCH" in ok.output and f"{bvm['amount_cents']} cents" in ok.output

    # the fixture events were priced by a table that is not installed: the CLI says which one it needs
    vbp = _vbp_line(world)
    bad = runner.invoke(app, ["proof", vbp["line_id"]])
    assert bad.exit_code == 1
    assert "MISMATCH" in bad.output and FIXTURE_PRICES.version in bad.output

    unknown = runner.invoke(app, ["proof", "no-such-line"])
    assert unknown.exit_code == 2
