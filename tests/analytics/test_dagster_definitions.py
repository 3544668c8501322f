"""The Dagster code location loads, and its job materializes every asset and passes every check in-process,
one UTC day (partition) at a time."""

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from contracts.settings import Settings
from dagster_project.definitions import build_definitions
from dagster_project.partitions import EVENT_DAYS
from dagster_project.resources import ApexDataResource
from sandbox.synthetic_events import write_synthetic_events
from tests.analytics.conftest import START, EventsFixture

MART_KEYS = {
    dg.AssetKey("raw_gateway_events"),
    dg.AssetKey("stg_gateway__requests"),
    dg.AssetKey("fct_llm_spend"),
    dg.AssetKey("agg_user_metrics_hourly"),
    # billing marts and their inputs (tests/billing_marts covers their content)
    dg.AssetKey("raw_validation_runs"),
    # the admin audit log (tests/analytics/test_audit_mart.py covers its content)
    dg.AssetKey("raw_gateway_audit_log"),
    dg.AssetKey("stg_gateway__audit_log"),
    dg.AssetKey("fct_admin_audit"),
    *(
        dg.AssetKey(name)
        for name in (
            "customer_contracts",
            "cloud_instance_prices",
            "stg_sandbox__validation_runs",
            "int_savings_claims",
            "int_billable_savings",
            "fct_savings",
            "agg_customer_daily",
            "dim_customers",
            "dim_models",
            # the Optimizers tab's daily marts
            "agg_savings_by_lever_daily",
            "agg_cache_outcomes_daily",
            "agg_cache_similarity_daily",
            "agg_routing_tiers_daily",
            "agg_compression_daily",
            "fct_bvm_charges",
            "fct_vbp_invoice_lines",
            "invoice_lines",
            "invoice_line_events",
            "invoices",
        )
    ),
}
UNPARTITIONED = {dg.AssetKey("raw_validation_runs"), dg.AssetKey("raw_gateway_audit_log")}
"""Raw inputs scanned whole on every run (not one UTC day's files)."""
RAW_CHECK = dg.AssetCheckKey(dg.AssetKey("raw_gateway_events"), "raw_events_quality")
DAY = f"{START:%Y-%m-%d}"  # every event of the synthetic_events fixture is on this UTC day


def _run_all(
    raise_on_error: bool = True, partition_key: str = DAY, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    job = build_definitions().resolve_job_def("apex_all")
    return job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), partition_key=partition_key, raise_on_error=raise_on_error
    )


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
    assert defs.resolve_job_def("apex_all").partitions_def == EVENT_DAYS
    assert defs.resolve_sensor_def("new_event_files_sensor")
    assert defs.resolve_schedule_def("apex_all_hourly").cron_schedule == "10 * * * *"
    graph = defs.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) >= MART_KEYS
    # the dbt source maps onto the raw asset, so the marts are downstream of it
    assert dg.AssetKey("raw_gateway_events") in graph.get(dg.AssetKey("stg_gateway__requests")).parent_keys
    assert RAW_CHECK in graph.asset_check_keys


def test_event_derived_assets_and_the_raw_check_are_partitioned_by_utc_day() -> None:
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    assert EVENT_DAYS.timezone == "UTC" and EVENT_DAYS.cron_schedule == "0 0 * * *"
    for key in MART_KEYS - UNPARTITIONED:
        node = graph.get(key)
        assert node.partitions_def == EVENT_DAYS, key
        # a backfill of a range of days is one run: raw scan per day, dbt once from the first day
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), key
    for key in UNPARTITIONED:
        assert graph.get(key).partitions_def is None, key
    assert graph.get(RAW_CHECK).partitions_def == EVENT_DAYS
    # today is a partition already (the gateway writes today's files all day)
    assert EVENT_DAYS.has_partition_key(f"{datetime.now(UTC):%Y-%m-%d}")
    # the monthly billing job is untouched: its own partitions, only the export
    billing = defs.resolve_job_def("billing_monthly")
    assert billing.partitions_def is not None and billing.partitions_def.cron_schedule == "0 0 1 * *"
    assert billing.asset_layer.executable_asset_keys == {dg.AssetKey("billing_invoice_export")}


@pytest.mark.slow
def test_apex_all_materializes_everything_and_passes_every_check(synthetic_events: EventsFixture) -> None:
    result = _run_all()
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == MART_KEYS
    partitions = {
        e.asset_key: e.event_specific_data.materialization.partition  # type: ignore[union-attr]
        for e in result.get_asset_materialization_events()
    }
    for key in UNPARTITIONED:
        assert partitions.pop(key) is None  # not partitioned
    assert set(partitions.values()) == {DAY}

    raw_meta = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("raw_gateway_events")
    )
    day_rows = 20_000 + pq.read_metadata(synthetic_events.replayed).num_rows
    assert raw_meta["row_count"].value == day_rows
    # + the replay; the root _schema_v<N>.parquet belongs to no day
    assert raw_meta["file_count"].value == len(synthetic_events.files) + 1

    checks = _check_evaluations(result)
    assert RAW_CHECK in checks
    assert checks[RAW_CHECK].partition == DAY
    assert checks[RAW_CHECK].metadata["rows_validated"].value == day_rows
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
    assert materialized == {dg.AssetKey("raw_gateway_events"), *UNPARTITIONED}


def _tick(defs: dg.Definitions, cursor: str | None):  # -> SensorExecutionData (not exported by dagster)
    sensor = defs.resolve_sensor_def("new_event_files_sensor")
    # a run request for a partition is checked against the job's partitions: the context needs the definitions
    with dg.build_sensor_context(cursor=cursor, definitions=defs, resources={"apex_data": _apex_data(defs)}) as context:
        return sensor.evaluate_tick(context)


def _schedule_tick(tick: datetime):  # -> ScheduleExecutionData
    defs = build_definitions()
    schedule = defs.resolve_schedule_def("apex_all_hourly")
    assert schedule.job_name == "apex_all" and schedule.execution_timezone == "UTC"
    context = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def())
    return schedule.evaluate_tick(context)


def _days(data: Any) -> list[str | None]:
    return sorted(r.partition_key for r in data.run_requests)


def test_sensor_requests_a_run_for_each_day_with_new_files(synthetic_events: EventsFixture) -> None:
    defs = build_definitions()
    assert defs.resolve_sensor_def("new_event_files_sensor").job_name == "apex_all"
    first = _tick(defs, None)
    assert _days(first) == [DAY]

    idle = _tick(defs, first.cursor)
    assert idle.run_requests == [] and idle.cursor == first.cursor

    # new files in two days: a late hour of the fixture's day and a new day; the day between got none
    write_synthetic_events(
        synthetic_events.events_dir, 100, seed=99, start=datetime(2026, 1, 5, 2, tzinfo=UTC), hours=1
    )
    write_synthetic_events(
        synthetic_events.events_dir, 100, seed=98, start=datetime(2026, 1, 7, 3, tzinfo=UTC), hours=1
    )
    after = _tick(defs, first.cursor)
    assert _days(after) == [DAY, "2026-01-07"]
    assert len({r.run_key for r in after.run_requests}) == 2
    assert after.cursor != first.cursor
    assert _tick(defs, after.cursor).run_requests == []

    # a file that arrives with an old mtime (copied with its timestamps) still counts, for its day only
    copied = synthetic_events.files[0].with_name("events-copied-0.parquet")
    shutil.copy2(synthetic_events.files[0], copied)
    os.utime(copied, ns=(0, 0))
    copied_tick = _tick(defs, after.cursor)
    assert _days(copied_tick) == [DAY]

    # a file leaving its day (quarantined by that day's run) needs no new run
    copied.unlink()
    gone = _tick(defs, copied_tick.cursor)
    assert gone.run_requests == [] and gone.cursor != copied_tick.cursor


def test_sensor_leaves_days_outside_the_partitions_alone(synthetic_events: EventsFixture) -> None:
    defs = build_definitions()
    first = _tick(defs, None)
    write_synthetic_events(
        synthetic_events.events_dir, 50, seed=5, start=datetime(2025, 12, 31, 1, tzinfo=UTC), hours=1
    )
    data = _tick(defs, first.cursor)
    assert data.run_requests == []  # 2025-12-31 is before the first event day: nothing to run
    assert _tick(defs, data.cursor).run_requests == []


def test_sensor_takes_over_the_cursor_of_the_unpartitioned_sensor(synthetic_events: EventsFixture) -> None:
    """Upgrading: the days the old sensor already saw (files no newer than its cursor) get no catch-up run."""
    files = [p for p in synthetic_events.events_dir.glob("**/*.parquet")]
    legacy = f"{max(p.stat().st_mtime_ns for p in files)}:{len(files)}"
    defs = build_definitions()
    assert _tick(defs, legacy).run_requests == []
    write_synthetic_events(synthetic_events.events_dir, 50, seed=6, start=datetime(2026, 1, 9, 4, tzinfo=UTC), hours=1)
    assert _days(_tick(defs, legacy)) == ["2026-01-09"]


@pytest.mark.parametrize(
    ("tick", "day"),
    [
        (datetime(2026, 1, 5, 14, 10, tzinfo=UTC), "2026-01-05"),
        # the first tick of a day closes the day before (its last hour)
        (datetime(2026, 1, 6, 0, 10, tzinfo=UTC), "2026-01-05"),
        (datetime(2026, 1, 6, 1, 10, tzinfo=UTC), "2026-01-06"),
    ],
)
def test_hourly_schedule_runs_the_day_of_the_hour_that_closed(tick: datetime, day: str) -> None:
    data = _schedule_tick(tick)
    assert [r.partition_key for r in data.run_requests or []] == [day]


def test_hourly_schedule_skips_before_the_first_event_day() -> None:
    data = _schedule_tick(datetime(2025, 6, 1, 12, 10, tzinfo=UTC))
    assert not data.run_requests and "not an event-day partition" in (data.skip_message or "")


def test_sensor_skips_when_there_are_no_event_files(tmp_path: Path) -> None:
    data = _tick(build_definitions(), None)
    assert data.run_requests == []
    assert "no event files" in (data.skip_message or "")


def _spend_by_day(warehouse: str) -> dict[str, tuple[int, int]]:
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.sql(
            "select cast(f.event_date as varchar), f.requests, h.requests from"
            " (select event_date, count(*) as requests from fct_llm_spend group by 1) f"
            " join (select cast(hour as date) as event_date, sum(requests) as requests"
            " from agg_user_metrics_hourly group by 1) h using (event_date)"
        ).fetchall()
    return {day: (spend, hourly) for day, spend, hourly in rows}


def _events_by_day(events_dir: Path) -> dict[str, int]:
    raw = pl.read_parquet(events_dir / "date=*" / "**" / "*.parquet", hive_partitioning=False)
    days = raw.unique("event_id").group_by(pl.col("ts_start").dt.date().cast(pl.String).alias("day")).len()
    return dict(days.iter_rows())


@pytest.mark.slow
def test_a_run_for_an_older_day_brings_its_late_files_into_the_marts(apex_settings: Settings) -> None:
    """dbt gets apex_reprocess_from = the day's 00:00: late files of an older day reach the incremental marts
    (the hour watermark alone would skip them: the marts already hold a later day)."""
    events_dir = apex_settings.data.events_path.resolve()
    warehouse = ApexDataResource.from_settings(apex_settings).warehouse_path
    instance = dg.DagsterInstance.ephemeral()
    write_synthetic_events(events_dir, 2_000, seed=1, start=datetime(2026, 1, 5, tzinfo=UTC), hours=4)
    write_synthetic_events(events_dir, 500, seed=2, start=datetime(2026, 1, 6, tzinfo=UTC), hours=2)
    first = _run_all(partition_key="2026-01-06", instance=instance)  # no warehouse yet: a full build
    assert first.success
    assert _spend_by_day(warehouse) == {"2026-01-05": (2_000, 2_000), "2026-01-06": (500, 500)}

    write_synthetic_events(events_dir, 300, seed=3, start=datetime(2026, 1, 5, 1, tzinfo=UTC), hours=1)
    late = _run_all(partition_key="2026-01-05", instance=instance)

    assert late.success
    assert [key for key, check in _check_evaluations(late).items() if not check.passed] == []
    assert _check_evaluations(late)[RAW_CHECK].metadata["rows_validated"].value == 2_300  # that day's rows only
    expected = _events_by_day(events_dir)
    assert expected == {"2026-01-05": 2_300, "2026-01-06": 500}
    assert _spend_by_day(warehouse) == {day: (n, n) for day, n in expected.items()}


@pytest.mark.slow
def test_a_run_for_an_older_day_leaves_later_days_files_to_their_own_run(apex_settings: Settings) -> None:
    """dbt also gets apex_reprocess_to = the day after: a later day's new files are loaded only by that day's
    run, after its own (blocking) check, never by an older day's run."""
    events_dir = apex_settings.data.events_path.resolve()
    warehouse = ApexDataResource.from_settings(apex_settings).warehouse_path
    instance = dg.DagsterInstance.ephemeral()
    write_synthetic_events(events_dir, 2_000, seed=1, start=datetime(2026, 1, 5, tzinfo=UTC), hours=4)
    write_synthetic_events(events_dir, 500, seed=2, start=datetime(2026, 1, 6, tzinfo=UTC), hours=2)
    assert _run_all(partition_key="2026-01-06", instance=instance).success  # first build: full

    write_synthetic_events(events_dir, 300, seed=3, start=datetime(2026, 1, 5, 1, tzinfo=UTC), hours=1)
    write_synthetic_events(events_dir, 200, seed=4, start=datetime(2026, 1, 6, 3, tzinfo=UTC), hours=1)
    assert _run_all(partition_key="2026-01-05", instance=instance).success
    # day 5 took its late files; day 6's new ones wait for day 6's run
    assert _spend_by_day(warehouse) == {"2026-01-05": (2_300, 2_300), "2026-01-06": (500, 500)}

    assert _run_all(partition_key="2026-01-06", instance=instance).success
    assert _spend_by_day(warehouse) == {"2026-01-05": (2_300, 2_300), "2026-01-06": (700, 700)}
