"""A real ``dbt build`` over synthetic events and validation runs; the billing marts must match what is
recomputed here, independently, from the raw Parquet files with polars and hashlib."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from dagster_project.assets.raw_events import raw_gateway_events
from sandbox.synthetic_events import write_synthetic_events
from tests.billing_marts.conftest import (
    ESCALATING,
    HOURS,
    START,
    UNPRICED_RUN,
    BillingData,
    run_dbt,
    write_billing_data,
)

pytestmark = pytest.mark.slow

TOL = 1e-9
INVOICE_LINES_CONTRACT = {
    "line_id": "VARCHAR",
    "invoice_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "billing_period": "VARCHAR",
    "line_type": "VARCHAR",
    "lever": "VARCHAR",
    "description": "VARCHAR",
    "amount_cents": "BIGINT",
    "currency": "VARCHAR",
    "verified_savings_usd": "DOUBLE",
    "fee_rate": "DOUBLE",
    "base_cost_usd": "DOUBLE",
    "status": "VARCHAR",
    "status_reason": "VARCHAR",
    "event_count": "BIGINT",
    "proof_hash": "VARCHAR",
}
INVOICES_CONTRACT = {
    "invoice_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "billing_period": "VARCHAR",
    "period_start": "DATE",
    "period_end": "DATE",
    "currency": "VARCHAR",
    "total_cents": "BIGINT",
    "line_count": "INTEGER",
    "stripe_customer_id": "VARCHAR",
    "days_until_due": "INTEGER",
    "status": "VARCHAR",
}
FEE_RATES = {"cust_globex": 0.15}  # the seed's override; everyone else pays 0.20


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BillingData:
    tmp = tmp_path_factory.mktemp("billing")
    data = write_billing_data(tmp / "data")
    # one schema-drifted file rides along: the raw asset quarantines it and the rest of the batch loads
    bad = sorted(data.events_dir.glob("date=*/hour=*/*.parquet"))[0]
    bad.write_bytes(b"not parquet")
    assert dg.materialize([raw_gateway_events], resources={"apex_data": data.resource}).success
    run_dbt(data, tmp, "build")
    return data


def _sql(data: BillingData, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(data.warehouse), read_only=True) as con:
        return con.sql(sql).pl()


def _raw(data: BillingData) -> pl.DataFrame:
    return pl.read_parquet(data.events_dir / "date=*" / "**" / "*.parquet", hive_partitioning=False).unique(
        "event_id", keep="first"
    )


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _cents(usd: float) -> int:
    return int((Decimal(repr(usd)).quantize(Decimal("1e-12")) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _verified_savings(raw: pl.DataFrame) -> pl.DataFrame:
    """The verification rules of fct_savings.yml, re-implemented on the raw events."""
    base = raw.filter(
        (pl.col("usage_source") == "provider")
        & (pl.col("price_status") == "priced")
        & pl.col("price_table_version").is_not_null()
        & pl.col("cost_usd").is_not_null()
        & pl.col("baseline_cost_usd").is_not_null()
        & pl.col("customer_id").is_not_null()
    ).with_columns(
        served=(pl.col("prompt_tokens") - pl.col("cached_tokens")) * pl.col("input_cost_per_token")
        + pl.col("cached_tokens") * pl.col("cache_read_cost_per_token")
        + pl.col("completion_tokens") * pl.col("output_cost_per_token"),
        period=pl.col("ts_start").dt.strftime("%Y-%m"),
    )

    def close(a: pl.Expr, b: pl.Expr) -> pl.Expr:
        return (a - b).abs() <= 1e-9 + 1e-6 * b.abs()

    cache = base.filter(
        pl.col("savings_cache_usd").is_not_null()
        & (pl.col("cost_usd") == 0)
        & close(pl.col("savings_cache_usd"), pl.col("baseline_cost_usd"))
    ).select("customer_id", "period", "event_id", lever=pl.lit("cache"), savings=pl.col("savings_cache_usd"))
    routing = base.filter(
        pl.col("savings_routing_usd").is_not_null()
        & close(pl.col("served"), pl.col("cost_usd"))
        & close(pl.col("savings_routing_usd"), pl.col("baseline_cost_usd") - pl.col("served"))
    ).select("customer_id", "period", "event_id", lever=pl.lit("routing"), savings=pl.col("savings_routing_usd"))
    compression = base.filter(
        pl.col("savings_compression_usd").is_not_null()
        & close(pl.col("savings_compression_usd"), pl.col("compression_tokens_saved") * pl.col("input_cost_per_token"))
    ).select(
        "customer_id", "period", "event_id", lever=pl.lit("compression"), savings=pl.col("savings_compression_usd")
    )
    return pl.concat([cache, routing, compression])


def test_invoice_lines_and_invoices_have_the_exact_contract(built: BillingData) -> None:
    for table, contract in (("invoice_lines", INVOICE_LINES_CONTRACT), ("invoices", INVOICES_CONTRACT)):
        described = _sql(built, f"describe {table}")
        assert dict(zip(described["column_name"], described["column_type"], strict=True)) == contract


def test_spend_in_marts_equals_raw_spend_and_the_bad_file_was_left_out(built: BillingData) -> None:
    raw = _raw(built)
    assert list((built.events_dir / "_quarantine").glob("**/*.reason.txt"))
    fct = _sql(built, "select count(*) n, sum(cost_usd) cost, sum(BilledCost) billed from fct_llm_spend").row(
        0, named=True
    )
    daily = _sql(built, "select sum(requests) n, sum(cost_usd) cost from agg_customer_daily").row(0, named=True)
    assert fct["n"] == daily["n"] == raw.height
    assert fct["cost"] == pytest.approx(raw["cost_usd"].sum(), abs=TOL)
    assert fct["billed"] == pytest.approx(raw["cost_usd"].sum(), abs=TOL)
    assert daily["cost"] == pytest.approx(raw["cost_usd"].sum(), abs=TOL)


def test_vbp_lines_bill_the_fee_on_independently_verified_savings(built: BillingData) -> None:
    verified = _verified_savings(_raw(built))
    expected = verified.group_by("customer_id", "period", "lever").agg(
        pl.col("savings").sum(), pl.len().alias("n"), pl.col("event_id").sort().str.join(",").alias("ids")
    )
    lines = _sql(built, "select * from invoice_lines where line_type = 'vbp'")
    assert lines.height == expected.height
    got = {(r["customer_id"], r["billing_period"], r["lever"]): r for r in lines.iter_rows(named=True)}
    for row in expected.iter_rows(named=True):
        key = (row["customer_id"], row["period"], row["lever"])
        line = got[key]
        fee = FEE_RATES.get(row["customer_id"], 0.20)
        assert line["line_id"] == _sha("vbp|" + "|".join(key))
        assert line["invoice_id"] == _sha(f"inv|{row['customer_id']}|{row['period']}")
        assert line["event_count"] == row["n"]
        assert line["proof_hash"] == _sha(row["ids"])
        assert line["verified_savings_usd"] == pytest.approx(row["savings"], abs=TOL)
        assert line["fee_rate"] == fee
        if row["savings"] > 0:
            assert line["status"] == "billable"
            assert line["amount_cents"] == _cents(line["verified_savings_usd"] * fee)
        else:
            assert (line["status"], line["amount_cents"]) == ("zero_negative_savings", 0)
            assert "did not save money" in line["status_reason"]
    # the escalating customer's routing cost it money: billed 0, said so
    negative = lines.filter((pl.col("customer_id") == ESCALATING[0]) & (pl.col("lever") == "routing"))
    assert negative.height >= 1 and set(negative["status"]) == {"zero_negative_savings"}


def test_bvm_lines_charge_prorated_compute_plus_half_and_block_unknown_prices(built: BillingData) -> None:
    runs = pl.read_parquet(built.runs_dir / "date=*" / "*.parquet")
    prices = pl.read_csv(Path(__file__).parents[2] / "dbt" / "seeds" / "cloud_instance_prices.csv")
    lines = _sql(built, "select * from invoice_lines where line_type = 'bvm'")
    by_id = {r["line_id"]: r for r in lines.iter_rows(named=True)}
    hourly = dict(zip(prices["instance_type"], prices["hourly_usd"], strict=True))
    assert len(by_id) == runs.height
    for run in runs.iter_rows(named=True):
        line = by_id[_sha(f"bvm|{run['run_id']}")]
        assert line["proof_hash"] == _sha(run["run_id"])
        seconds = -(-(run["ended_at"] - run["started_at"]) // timedelta(milliseconds=1) // 1000)
        if run["instance_type"] not in hourly:
            assert run["run_id"] == UNPRICED_RUN
            assert (line["status"], line["amount_cents"]) == ("blocked_unknown_price", 0)
            assert "z9.mega" in line["status_reason"]
            continue
        base = seconds * hourly[run["instance_type"]] / 3600
        assert line["base_cost_usd"] == pytest.approx(base, rel=1e-12)
        assert line["amount_cents"] == _cents(line["base_cost_usd"] * 1.5)
    blocked = _sql(
        built, "select status from invoices where customer_id = 'cust_globex' and billing_period = '2026-02'"
    )
    assert blocked["status"].to_list() == ["blocked"]


def test_invoices_total_their_billable_lines(built: BillingData) -> None:
    invoices = _sql(built, "select * from invoices")
    lines = _sql(built, "select * from invoice_lines")
    for inv in invoices.iter_rows(named=True):
        mine = lines.filter(pl.col("invoice_id") == inv["invoice_id"])
        assert inv["invoice_id"] == _sha(f"inv|{inv['customer_id']}|{inv['billing_period']}")
        assert inv["total_cents"] == mine.filter(pl.col("status") == "billable")["amount_cents"].sum()
        assert inv["line_count"] == mine.height
    assert (lines["amount_cents"] >= 0).all()
    statuses = dict(zip(invoices["customer_id"], invoices["status"], strict=False))
    assert statuses["cust_initech"] == "no_stripe_mapping"
    assert "ready" in set(invoices.filter(pl.col("customer_id") == "cust_acme")["status"])
    assert {p.isoformat()[:7] for p in invoices["period_start"]} == {"2026-01", "2026-02"}


def test_an_incremental_build_adds_a_new_hour_and_matches_a_full_refresh(built: BillingData, tmp_path: Path) -> None:
    before = _sql(built, "select max(event_hour) h, count(*) n from fct_llm_spend").row(0, named=True)
    write_synthetic_events(built.events_dir, 2_000, seed=99, start=START + timedelta(hours=HOURS), hours=1)
    run_dbt(built, tmp_path, "build", "--exclude", "resource_type:unit_test")
    raw = _raw(built)
    after = _sql(built, "select max(event_hour) h, count(*) n, sum(cost_usd) c from fct_llm_spend").row(0, named=True)
    assert after["h"] == before["h"] + timedelta(hours=1)
    assert after["n"] == raw.height == before["n"] + 2_000
    assert after["c"] == pytest.approx(raw["cost_usd"].sum(), abs=TOL)
    incremental = _sql(built, "select sum(savings_usd) s, count(*) n from fct_savings").row(0, named=True)
    run_dbt(built, tmp_path, "run", "--full-refresh", "--select", "fct_savings+", "stg_gateway__requests+")
    full = _sql(built, "select sum(savings_usd) s, count(*) n from fct_savings").row(0, named=True)
    assert incremental["n"] == full["n"]
    assert incremental["s"] == pytest.approx(full["s"], abs=TOL)
