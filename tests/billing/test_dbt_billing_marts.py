"""Billing on the real dbt marts: ``dbt build`` over synthetic events and runs, then proof, export and push."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts.pricing import ModelPrice, PriceTable
from contracts.settings import load_settings
from contracts.validation_runs import ValidationRun, synthetic_validation_runs, write_validation_runs
from dagster_project.billing.export import export_period
from dagster_project.billing.marts import rows_for_period
from dagster_project.billing.proof import prove_lines
from dagster_project.billing.settings import BillingPaths, StripeSettings
from dagster_project.billing.stripe_push import push_period
from dagster_project.resources import ApexDataResource
from sandbox.fake_stripe import FakeStripe
from sandbox.synthetic_events import PRICE_TABLE_VERSION, PRICES, write_synthetic_events
from tests.dbt_runner import run_dbt

pytestmark = pytest.mark.slow

PERIOD = "2026-11"
START = datetime(2026, 11, 3, tzinfo=UTC)
SYNTHETIC_TABLE = PriceTable(
    {name: ModelPrice(p.input, p.output, p.cache_read) for name, p in PRICES.items()}, PRICE_TABLE_VERSION
)


@pytest.fixture
def built(tmp_path: Path) -> BillingPaths:
    settings = load_settings()
    paths = BillingPaths.from_settings(settings)
    write_synthetic_events(paths.events_dir, 6_000, seed=11, start=START, hours=12)
    runs = synthetic_validation_runs(["cust_acme", "cust_globex", "cust_initech"], START, hours=12, seed=3)
    runs.append(
        ValidationRun(
            run_id="unpriced-run-1",
            customer_id="cust_globex",
            started_at=START,
            ended_at=START + timedelta(minutes=30),
            cpu_cores=8,
            gpus=0,
            instance_type="z99.unlisted",
            validated="routing_policy:v1",
            outcome="passed",
        )
    )
    write_validation_runs(paths.validation_runs_dir, runs)
    resource = ApexDataResource.from_settings(settings)
    run_dbt(resource.dbt_env(), tmp_path, "build")
    return paths


def test_every_real_line_proves_exports_and_pushes(built: BillingPaths, tmp_path: Path) -> None:
    rows = rows_for_period(built.warehouse, PERIOD)
    assert {i["customer_id"] for i in rows["invoices"]} == {"cust_acme", "cust_globex", "cust_initech"}

    proofs = prove_lines(
        built.warehouse,
        built.events_dir,
        period=PERIOD,
        price_tables=[SYNTHETIC_TABLE],
        validation_runs_dir=built.validation_runs_dir,
        instance_prices=built.instance_prices,
    )
    assert len(proofs) == len(rows["invoice_lines"])
    bad = {p.line_id: p.mismatch_reasons() for p in proofs if not p.matches}
    assert not bad
    assert {p.lever for p in proofs if p.line_type == "vbp"} >= {"cache", "routing"}
    assert sum(p.recomputed_cents or 0 for p in proofs) == sum(i["total_cents"] for i in rows["invoices"])

    out = export_period(built.warehouse, built.ledger, PERIOD, tmp_path / "export", ["csv", "parquet", "json"])
    assert out.rows == {name: len(rows[name]) for name in rows}

    fake = FakeStripe().start()
    try:
        fake.add_customer("cus_demoAcme00001")
        fake.add_customer("cus_demoGlobex0001")
        settings = StripeSettings("sk_test_dbt", fake.base_url, max_network_retries=0)
        report = push_period(built.warehouse, built.ledger, PERIOD, settings)
    finally:
        fake.stop()
    plan = {p.customer_id: p for p in report.plan}
    assert plan["cust_acme"].action == "push"
    assert plan["cust_globex"].action == "blocked" and any("z99.unlisted" in r for r in plan["cust_globex"].reasons)
    assert plan["cust_initech"].action == "no_stripe_mapping"
    assert report.exit_code == 1
    (invoice,) = fake.invoices.values()
    acme_total = next(i["total_cents"] for i in rows["invoices"] if i["customer_id"] == "cust_acme")
    assert fake._invoice_view(invoice["id"])["total"] == acme_total and invoice["status"] == "open"
