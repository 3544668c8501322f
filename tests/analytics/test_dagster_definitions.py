"""The Dagster code location loads, and its job materializes every asset and passes every check in-process."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dagster_project.definitions import build_definitions
from sandbox.synthetic_events import write_synthetic_events
from tests.analytics.conftest import EventsFixture

MART_KEYS = {
    dg.AssetKey("raw_gateway_events"),
    dg.AssetKey("stg_gateway__requests"),
    dg.AssetKey("fct_llm_spend"),
    dg.AssetKey("agg_user_metrics_hourly"),
    # billing marts and their inputs (tests/billing_marts covers their content)
    dg.AssetKey("raw_validation_runs"),
    *(
        dg.AssetKey(name)
        for name in (
            "customer_contracts",
            "cloud_instance_prices",
            "stg_sandbox__validation_runs",
            "fct_savings",
            "agg_customer_daily",
            "fct_bvm_charges",
            "fct_vbp_invoice_lines",
            "invoice_lines",
            "invoice_line_events",
            "invoices",
        )
    ),
}
RAW_CHECK = dg.AssetCheckKey(dg.AssetKey("raw_gateway_events"), "raw_events_quality")


def _run_all(raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    job = build_definitions().resolve_job_def("apex_all")
    return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=raise_on_error)


def _check_evaluations(result: dg.ExecuteInProcessResult) -> dict[dg.AssetCheckKey, dg.AssetCheckEvaluation]:
    return {
        e.asset_check_evaluation_data.asset_check_key: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }


def _apex_data(defs: dg.Definitions) -> Any:
    assert defs.resources is not None
    return defs.resources["apex_data"]


def test_definitions_load_with_job_sensor_and_schedule() -> None:
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("apex_all")
    assert defs.resolve_sensor_def("new_event_files_sensor")
    assert defs.resolve_schedule_def("apex_all_hourly").cron_schedule == "10 * * * *"
    graph = defs.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) >= MART_KEYS
    # the dbt source maps onto the raw asset, so the marts are downstream of it
    assert dg.AssetKey("raw_gateway_events") in graph.get(dg.AssetKey("stg_gateway__requests")).parent_keys
    assert RAW_CHECK in graph.asset_check_keys


@pytest.mark.slow
def test_apex_all_materializes_everything_and_passes_every_check(synthetic_events: EventsFixture) -> None:
    result = _run_all()
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == MART_KEYS

    raw_meta = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("raw_gateway_events")
    )
    assert raw_meta["row_count"].value == 20_000 + pq.read_metadata(synthetic_events.replayed).num_rows
    assert raw_meta["file_count"].value == len(synthetic_events.files) + 2  # + replay + _schema_v<N>

    checks = _check_evaluations(result)
    assert RAW_CHECK in checks
    assert len(checks) > 30  # the dbt tests, reported as asset checks
    assert [key for key, check in checks.items() if not check.passed] == []


@pytest.mark.slow
def test_raw_events_quality_fails_on_negative_cost_and_blocks_the_marts(
    synthetic_events: EventsFixture,
) -> None:
    bad = synthetic_events.files[-1]
    table = pq.read_table(bad)
    cost = table.column("cost_usd")
    table = table.set_column(table.schema.get_field_index("cost_usd"), "cost_usd", pc.negate(cost))
    pq.write_table(table, bad.with_name("events-bad-0.parquet"))

    result = _run_all(raise_on_error=False)

    check = _check_evaluations(result)[RAW_CHECK]
    assert not check.passed
    failed: list[dict[str, Any]] = check.metadata["failed_expectations"].value  # type: ignore[assignment]
    assert [f["column"] for f in failed] == ["cost_usd"]
    assert failed[0]["expectation"] == "expect_column_values_to_be_between"
    assert failed[0]["unexpected_count"] > 0
    # blocking: nothing downstream of the raw events was built
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {dg.AssetKey("raw_gateway_events"), dg.AssetKey("raw_validation_runs")}


def test_sensor_requests_a_run_only_when_new_files_arrive(synthetic_events: EventsFixture) -> None:
    defs = build_definitions()
    sensor = defs.resolve_sensor_def("new_event_files_sensor")
    resources = {"apex_data": _apex_data(defs)}

    def tick(cursor: str | None):  # -> SensorExecutionData (not exported by dagster)
        with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
            return sensor.evaluate_tick(context)

    assert sensor.job_name == "apex_all"
    first = tick(None)
    assert len(first.run_requests) == 1

    idle = tick(first.cursor)
    assert idle.run_requests == [] and idle.cursor == first.cursor

    write_synthetic_events(synthetic_events.events_dir, 100, seed=99, start=datetime(2026, 1, 5, 2, tzinfo=UTC))
    after = tick(first.cursor)
    assert len(after.run_requests) == 1
    assert after.cursor != first.cursor
    assert tick(after.cursor).run_requests == []


def test_sensor_skips_when_there_are_no_event_files(tmp_path: Path) -> None:
    defs = build_definitions()
    sensor = defs.resolve_sensor_def("new_event_files_sensor")
    with dg.build_sensor_context(resources={"apex_data": _apex_data(defs)}) as context:
        data = sensor.evaluate_tick(context)
    assert data.run_requests == []
    assert "no event files" in (data.skip_message or "")
