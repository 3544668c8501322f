"""Dagster side of billing: the monthly invoice export asset, its job and the monthly invoicing schedule."""

import dagster as dg

from dagster_project.billing.export import EXPORT_FORMATS, export_period
from dagster_project.billing.resources import BillingResource

__all__ = ["BILLING_MONTHS", "billing_invoice_export", "billing_monthly_invoicing", "billing_monthly_job"]

BILLING_MONTHS = dg.MonthlyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")


class ExportConfig(dg.Config):
    formats: list[str] = list(EXPORT_FORMATS)


@dg.asset(
    partitions_def=BILLING_MONTHS,
    deps=[dg.AssetKey(["invoices"]), dg.AssetKey(["invoice_lines"]), dg.AssetKey(["invoice_line_events"])],
    group_name="billing",
    description="Invoice export files (invoices, lines, proof rows) for the month, under <data dir>/exports/<period>/.",
)
def billing_invoice_export(
    context: dg.AssetExecutionContext, config: ExportConfig, apex_billing: BillingResource
) -> dg.MaterializeResult:
    period = context.partition_key[:7]  # partition keys are the month's first day, 2026-11-01
    paths = apex_billing.paths()
    result = export_period(
        paths.warehouse,
        paths.ledger,
        period,
        paths.exports_dir / period,
        formats=config.formats,  # type: ignore[arg-type]
    )
    return dg.MaterializeResult(
        metadata={
            "period": period,
            "files": dg.MetadataValue.json({k: str(v) for k, v in result.files.items()}),
            **{f"rows_{name}": n for name, n in result.rows.items()},
        }
    )


billing_monthly_job = dg.define_asset_job(
    name="billing_monthly",
    selection=dg.AssetSelection.assets(billing_invoice_export),
    description="Export the finished month's invoices (after the blocking billing checks pass).",
)

# Runs on the 1st at 06:00 UTC for the month that just ended (the partition that closed at midnight).
billing_monthly_invoicing = dg.build_schedule_from_partitioned_job(
    billing_monthly_job,
    hour_of_day=6,
    name="billing_monthly_invoicing",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
