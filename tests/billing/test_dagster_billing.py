"""The billing assets, blocking checks and monthly schedule load and run in-process."""

from __future__ import annotations

import dagster as dg
import pyarrow.parquet as pq
import pytest

from contracts.settings import load_settings
from dagster_project.billing.assets import billing_invoice_export
from dagster_project.billing.checks import billing_invoice_lines_quality, billing_invoices_quality
from dagster_project.billing.resources import BillingResource
from dagster_project.definitions import build_definitions
from tests.billing.world import World, execute

# a finished month (monthly partitions exist once their month has ended)
PERIOD = "2026-10"

CHECKS = {
    dg.AssetCheckKey(dg.AssetKey("invoice_lines"), "billing_invoice_lines_quality"),
    dg.AssetCheckKey(dg.AssetKey("invoices"), "billing_invoices_quality"),
}


def test_definitions_register_billing() -> None:
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert set(graph.asset_check_keys) >= CHECKS
    export = graph.get(dg.AssetKey("billing_invoice_export"))
    assert {dg.AssetKey("invoices"), dg.AssetKey("invoice_lines")} <= set(export.parent_keys)
    schedule = defs.resolve_schedule_def("billing_monthly_invoicing")
    assert schedule.cron_schedule == "0 6 1 * *" and schedule.job_name == "billing_monthly"
    # the hourly refresh never picks up the monthly partitioned export
    apex_all = defs.resolve_job_def("apex_all")
    assert dg.AssetKey("billing_invoice_export") not in apex_all.asset_layer.executable_asset_keys


def test_checks_are_blocking_and_report_failures(world: World) -> None:
    for check in (billing_invoice_lines_quality, billing_invoices_quality):
        spec = next(iter(check.check_specs))
        assert spec.blocking
    resource = BillingResource.from_settings(load_settings())
    assert billing_invoices_quality(apex_billing=resource).passed
    execute(world.warehouse, "update invoices set total_cents = total_cents + 7")
    result = billing_invoices_quality(apex_billing=resource)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["failed_count"].value >= 1


def test_export_asset_materializes_a_month(world: World) -> None:
    resource = BillingResource.from_settings(load_settings())
    result = dg.materialize(
        [billing_invoice_export], partition_key=f"{PERIOD}-01", resources={"apex_billing": resource}
    )
    assert result.success
    out = world.root / "data" / "exports" / PERIOD
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{t}-{PERIOD}.{f}"
        for t in ("invoices", "invoice_lines", "invoice_line_events")
        for f in ("csv", "parquet", "json")
    )
    assert pq.read_table(out / f"invoices-{PERIOD}.parquet").num_rows == 3


def test_export_asset_fails_when_a_check_failed(world: World) -> None:
    execute(world.warehouse, "update invoice_lines set amount_cents = -1 where line_type = 'bvm'")
    resource = BillingResource.from_settings(load_settings())
    with pytest.raises(Exception, match="blocking billing check"):
        dg.materialize([billing_invoice_export], partition_key=f"{PERIOD}-01", resources={"apex_billing": resource})


def test_public_surface_is_importable() -> None:
    import dagster_project.billing as billing

    assert all(hasattr(billing, name) for name in billing.__all__)


def test_the_gateway_cli_does_not_import_billing_at_start() -> None:
    import subprocess
    import sys

    # dagster_project's own command registration is imported; the Dagster and Stripe libraries must not be
    libs = "m.startswith(('dagster', 'stripe')) and not m.startswith('dagster_project')"
    code = f"import sys, contracts.console; print(sorted(m for m in sys.modules if {libs}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
