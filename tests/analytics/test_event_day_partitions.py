"""A run of one UTC day scans, quarantines and validates that day's event files and no other day's."""

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from contracts.event_files import event_day, event_days, files_by_day, list_event_files
from contracts.settings import Settings
from dagster_project.assets.raw_events import raw_gateway_events
from dagster_project.checks import raw_events_quality, read_event_chunks
from dagster_project.partitions import dbt_reprocess_from, is_event_day, partition_range_tags
from dagster_project.resources import ApexDataResource
from sandbox.synthetic_events import write_synthetic_events

DAY_A, DAY_B = "2026-01-05", "2026-01-06"


class TwoDays:
    def __init__(self, settings: Settings) -> None:
        self.resource = ApexDataResource.from_settings(settings)
        self.events_dir = self.resource.events_path
        self.a = write_synthetic_events(
            self.events_dir, 2_000, seed=1, start=datetime(2026, 1, 5, 3, tzinfo=UTC), hours=3
        )
        self.b = write_synthetic_events(
            self.events_dir, 1_500, seed=2, start=datetime(2026, 1, 6, 5, tzinfo=UTC), hours=2
        )
        # day B also holds a malformed file (to quarantine) and a file with negative costs (to fail the check)
        self.malformed = self.b[0].with_name("events-malformed-0.parquet")
        self.malformed.write_bytes(b"PAR1 this is not a parquet file")
        table = pq.read_table(self.b[1])
        index = table.schema.get_field_index("cost_usd")
        self.negative = self.b[1].with_name("events-negative-0.parquet")
        pq.write_table(table.set_column(index, "cost_usd", pc.negate(table.column("cost_usd"))), self.negative)
        self.negative_rows = table.num_rows

    def rows(self, files: list[Path]) -> int:
        return sum(pq.read_metadata(p).num_rows for p in files)

    def run(self, **kwargs: Any) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [raw_gateway_events, raw_events_quality],
            resources={"apex_data": self.resource},
            raise_on_error=False,
            **kwargs,
        )


@pytest.fixture
def two_days(apex_settings: Settings) -> TwoDays:
    return TwoDays(apex_settings)


def _raw_meta(result: dg.ExecuteInProcessResult) -> dict[str | None, Any]:
    return {
        e.event_specific_data.materialization.partition: e.materialization.metadata  # type: ignore[union-attr]
        for e in result.get_asset_materialization_events()
    }


def _check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_event_files_are_grouped_by_their_day_folder(two_days: TwoDays) -> None:
    root = two_days.events_dir
    assert event_days(root) == [DAY_A, DAY_B]
    assert list_event_files(root, [DAY_A]) == sorted(two_days.a)
    assert set(list_event_files(root, [DAY_B])) == {*two_days.b, two_days.malformed, two_days.negative}
    assert list_event_files(root, ["2026-01-07"]) == []
    schema_file = next(root.glob("_schema_v*.parquet"))
    assert event_day(root, schema_file) is None  # the root schema file belongs to no day
    assert schema_file not in [p for files in files_by_day(root, list_event_files(root)).values() for p in files]


def test_a_day_run_touches_only_that_days_files(two_days: TwoDays) -> None:
    result = two_days.run(partition_key=DAY_A)

    assert result.success
    (meta,) = _raw_meta(result).values()
    assert list(_raw_meta(result)) == [DAY_A]
    assert meta["file_count"].value == len(two_days.a)
    assert meta["row_count"].value == two_days.rows(two_days.a) == 2_000
    assert meta["quarantined_count"].value == 0
    # day B's bad files were neither quarantined nor validated
    assert two_days.malformed.exists() and two_days.negative.exists()
    assert not (two_days.events_dir / "_quarantine").exists()
    check = _check(result)
    assert check.passed and check.partition == DAY_A
    assert check.metadata["rows_validated"].value == 2_000  # the GX check read that day's rows, no more
    assert check.metadata["files_validated"].value == len(two_days.a)


def test_the_other_days_run_quarantines_and_fails_its_own_check(two_days: TwoDays) -> None:
    a_files = {p: p.stat().st_mtime_ns for p in two_days.a}

    result = two_days.run(partition_key=DAY_B)

    meta = _raw_meta(result)[DAY_B]
    assert meta["quarantined_count"].value == 1
    assert not two_days.malformed.exists()
    assert (two_days.events_dir / "_quarantine" / f"date={DAY_B}").is_dir()
    day_b_rows = two_days.rows(two_days.b) + two_days.negative_rows
    assert meta["row_count"].value == day_b_rows
    check = _check(result)
    assert not check.passed and check.partition == DAY_B
    assert check.metadata["rows_validated"].value == day_b_rows
    failed = check.metadata["failed_expectations"].value
    assert [f["column"] for f in failed] == ["cost_usd"]  # type: ignore[union-attr]
    # day A untouched
    assert {p: p.stat().st_mtime_ns for p in two_days.a} == a_files


def test_a_range_run_covers_each_day_of_the_range(two_days: TwoDays) -> None:
    two_days.negative.unlink()

    result = two_days.run(tags=partition_range_tags(DAY_A, DAY_B))

    assert result.success
    assert sorted(_raw_meta(result)) == [DAY_A, DAY_B]  # one materialization per day of the range
    check = _check(result)
    assert check.passed
    assert check.metadata["rows_validated"].value == two_days.rows(two_days.a + two_days.b) == 3_500
    assert check.metadata["days"].value == [DAY_A, DAY_B]


def test_the_raw_asset_without_a_partition_covers_every_day(two_days: TwoDays) -> None:
    """``dg.materialize([raw_gateway_events])`` in code (no partition): every day, as before partitioning."""
    result = dg.materialize([raw_gateway_events], resources={"apex_data": two_days.resource})

    assert result.success
    meta = _raw_meta(result)[None]
    assert meta["quarantined_count"].value == 1 and not two_days.malformed.exists()
    assert meta["row_count"].value == 3_500 + two_days.negative_rows


def test_read_event_chunks_reads_only_the_days_asked(two_days: TwoDays) -> None:
    two_days.malformed.unlink()
    frames = list(read_event_chunks(two_days.events_dir, days=[DAY_A]))
    assert sum(len(f) for f in frames) == 2_000


def test_partition_helpers() -> None:
    assert dbt_reprocess_from(datetime(2026, 1, 5, tzinfo=UTC)) == "2026-01-05 00:00:00"
    assert is_event_day("2026-01-05")
    assert not is_event_day("2025-12-31")  # before the first event day
    assert not is_event_day("2026-1-5")
    assert partition_range_tags(DAY_A, DAY_B) == {
        "dagster/asset_partition_range_start": DAY_A,
        "dagster/asset_partition_range_end": DAY_B,
    }


def test_runs_take_turns_on_the_warehouse(apex_settings: Settings) -> None:
    """Two days' runs at once (the sensor requests one per day) build the DuckDB marts one after the other."""
    resource = ApexDataResource.from_settings(apex_settings)
    waits: list[str] = []
    order: list[str] = []

    def second_run() -> None:
        with resource.warehouse_lock(on_wait=waits.append):
            order.append("second")

    with resource.warehouse_lock(on_wait=waits.append):
        thread = threading.Thread(target=second_run)
        thread.start()
        time.sleep(0.3)
        order.append("first")
    thread.join(timeout=10)

    assert order == ["first", "second"]
    assert len(waits) == 1 and "another run is building the warehouse" in waits[0]
