"""Blocking great-expectations checks on the billing marts, and the gate export and push go through.
Two suites, run with GX 1.x directly (``dagster-ge`` targets GX < 1):

    billing_invoice_lines_quality  line ids present and unique; amount_cents a non-negative integer;
                                   line_type and status in their sets
    billing_invoices_quality       invoice ids present and unique; total_cents = the sum of its billable lines;
                                   line_count = its number of lines

Each run is recorded in the billing ledger with the warehouse file's mtime. ``require_checks_passed`` (called by
export and push) re-runs the suites when no run matches the warehouse as it is now, and refuses when the
latest run of either failed.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_project.billing.errors import BillingChecksFailed
from dagster_project.billing.ledger import CheckRecord, Ledger
from dagster_project.billing.marts import connect_marts
from dagster_project.billing.resources import BillingResource

__all__ = [
    "BILLING_CHECK_NAMES",
    "billing_invoice_lines_quality",
    "billing_invoices_quality",
    "require_checks_passed",
    "run_billing_checks",
]

_LINES_SQL = "select line_id, invoice_id, amount_cents, line_type, status from main.invoice_lines"
_INVOICES_SQL = """
select i.invoice_id, i.total_cents, i.line_count,
       coalesce(sum(l.amount_cents) filter (where l.status = 'billable'), 0) as billable_line_cents,
       count(l.line_id) as lines_found
from main.invoices i left join main.invoice_lines l using (invoice_id)
group by all
"""


def _lines_suite() -> Any:
    import great_expectations as gx

    e = gx.expectations
    suite = gx.ExpectationSuite(name="billing_invoice_lines_quality")
    for column in ("line_id", "invoice_id", "amount_cents"):
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(e.ExpectColumnValuesToBeUnique(column="line_id"))
    suite.add_expectation(e.ExpectColumnValuesToBeInTypeList(column="amount_cents", type_list=["int64", "Int64"]))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="amount_cents", min_value=0))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="line_type", value_set=["vbp", "bvm"]))
    suite.add_expectation(
        e.ExpectColumnValuesToBeInSet(
            column="status", value_set=["billable", "zero_negative_savings", "blocked_unknown_price"]
        )
    )
    return suite


def _invoices_suite() -> Any:
    import great_expectations as gx

    e = gx.expectations
    suite = gx.ExpectationSuite(name="billing_invoices_quality")
    suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column="invoice_id"))
    suite.add_expectation(e.ExpectColumnValuesToBeUnique(column="invoice_id"))
    suite.add_expectation(e.ExpectColumnPairValuesToBeEqual(column_A="total_cents", column_B="billable_line_cents"))
    suite.add_expectation(e.ExpectColumnPairValuesToBeEqual(column_A="line_count", column_B="lines_found"))
    return suite


_SUITES = {
    "billing_invoice_lines_quality": (_LINES_SQL, _lines_suite),
    "billing_invoices_quality": (_INVOICES_SQL, _invoices_suite),
}
BILLING_CHECK_NAMES = tuple(_SUITES)


def _validate(frame: Any, make_suite: Any) -> list[dict[str, Any]]:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = make_suite()  # after get_context: a suite needs an active context
    batch = (
        context.data_sources.add_pandas("billing")
        .add_dataframe_asset(suite.name)
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(context.suites.add(suite))
    failures = []
    for outcome in result.results:
        if outcome.success:
            continue
        config = outcome.expectation_config
        assert config is not None
        failures.append(
            {
                "expectation": config.type,
                "kwargs": {k: v for k, v in config.kwargs.items() if k != "batch_id"},
                "unexpected_count": outcome.result.get("unexpected_count"),
                "unexpected_sample": [str(v) for v in (outcome.result.get("partial_unexpected_list") or [])[:5]],
            }
        )
    return failures


def run_billing_checks(warehouse: Path, ledger_path: Path, *, record: bool = True) -> dict[str, CheckRecord]:
    """Run both suites over the whole billing marts, record each run (unless not ``record``), return them."""
    warehouse = Path(warehouse)
    mtime = warehouse.stat().st_mtime_ns
    records = {}
    with connect_marts(warehouse) as con:
        frames = {name: con.execute(sql).fetchdf() for name, (sql, _) in _SUITES.items()}
    for name, (_, make_suite) in _SUITES.items():
        failures = _validate(frames[name], make_suite)
        records[name] = CheckRecord(name, mtime, not failures, failures, datetime.now(UTC).isoformat())
    if record:
        with Ledger(ledger_path) as ledger:
            for rec in records.values():
                ledger.record_check(rec, warehouse)
    return records


def require_checks_passed(warehouse: Path, ledger_path: Path, *, record: bool = True) -> dict[str, CheckRecord]:
    """The latest check records for the warehouse as it is now (running the suites if there are none);
    BillingChecksFailed naming the failed expectations when any failed. ``record=False`` writes nothing."""
    warehouse = Path(warehouse)
    mtime = warehouse.stat().st_mtime_ns if warehouse.exists() else -1
    latest: dict[str, CheckRecord] = {}
    if record or Path(ledger_path).exists():
        with Ledger(ledger_path) as ledger:
            latest = ledger.latest_checks(warehouse)
    if set(latest) != set(BILLING_CHECK_NAMES) or any(r.warehouse_mtime_ns != mtime for r in latest.values()):
        latest = run_billing_checks(warehouse, ledger_path, record=record)
    failed = {name: r for name, r in latest.items() if not r.passed}
    if failed:
        detail = "; ".join(
            f"{name}: " + ", ".join(f"{f['expectation']}({f['kwargs']}) x{f['unexpected_count']}" for f in r.details)
            for name, r in sorted(failed.items())
        )
        raise BillingChecksFailed(
            f"blocking billing check(s) failed at {latest[next(iter(failed))].checked_at}: {detail}"
        )
    return latest


def _check_result(record: CheckRecord) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=record.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failed_expectations": dg.MetadataValue.json(record.details), "failed_count": len(record.details)},
    )


@dg.asset_check(
    asset=dg.AssetKey(["invoice_lines"]),
    name="billing_invoice_lines_quality",
    blocking=True,
    description="GX: line ids present and unique, amount_cents non-negative integers, enums in their sets.",
)
def billing_invoice_lines_quality(apex_billing: BillingResource) -> dg.AssetCheckResult:
    paths = apex_billing.paths()
    return _check_result(run_billing_checks(paths.warehouse, paths.ledger)["billing_invoice_lines_quality"])


@dg.asset_check(
    asset=dg.AssetKey(["invoices"]),
    name="billing_invoices_quality",
    blocking=True,
    description="GX: invoice ids present and unique, total_cents = sum of billable lines, line_count matches.",
)
def billing_invoices_quality(apex_billing: BillingResource) -> dg.AssetCheckResult:
    paths = apex_billing.paths()
    return _check_result(run_billing_checks(paths.warehouse, paths.ledger)["billing_invoices_quality"])
