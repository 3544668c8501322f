"""Schema-drifted or malformed raw files are quarantined by the raw assets before dbt reads the glob."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from contracts.event_files import list_event_files
from dagster_project.assets.raw_events import raw_gateway_events
from dagster_project.assets.raw_validation_runs import raw_validation_runs
from tests.billing_marts.conftest import BillingData


def _drift(path: Path, kind: str) -> None:
    table = pq.read_table(path)
    if kind == "wrong_type":
        idx = table.schema.get_field_index("cost_usd")
        table = table.set_column(idx, "cost_usd", pc.cast(table.column("cost_usd"), pa.string()))
    elif kind == "missing_required":
        table = table.drop_columns(["event_id"])
    pq.write_table(table, path)


@pytest.mark.parametrize(
    ("kind", "column"),
    [("wrong_type", "cost_usd"), ("missing_required", "event_id"), ("malformed", None)],
    ids=["wrong-column-type", "missing-required-column", "not-parquet"],
)
def test_raw_events_asset_quarantines_a_bad_file_and_keeps_the_rest(
    billing_data: BillingData, kind: str, column: str | None
) -> None:
    files = list_event_files(billing_data.events_dir)
    victim = files[3]
    if kind == "malformed":
        victim.write_bytes(b"PAR1 this is not a parquet file")
    else:
        _drift(victim, kind)
    good_rows = sum(pq.read_metadata(p).num_rows for p in files if p != victim)

    result = dg.materialize([raw_gateway_events], resources={"apex_data": billing_data.resource})

    assert result.success
    assert not victim.exists()
    relative = victim.relative_to(billing_data.events_dir)
    moved = billing_data.events_dir / "_quarantine" / relative.parent / (victim.name + ".quarantined")
    reason = (billing_data.events_dir / "_quarantine" / relative.parent / (victim.name + ".reason.txt")).read_text()
    assert moved.exists()
    assert victim.name in reason
    if column:
        assert repr(column) in reason
    else:
        assert "unreadable Parquet" in reason
    meta = result.asset_materializations_for_node("raw_gateway_events")[0].metadata
    assert meta["quarantined_count"].value == 1
    assert meta["row_count"].value == good_rows
    # the glob dbt and the GX check read no longer sees it
    assert moved not in list_event_files(billing_data.events_dir)
    assert len(list_event_files(billing_data.events_dir)) == len(files) - 1


def test_raw_validation_runs_asset_quarantines_a_drifted_file(billing_data: BillingData) -> None:
    victim = sorted(billing_data.runs_dir.glob("date=*/*.parquet"))[0]
    table = pq.read_table(victim)
    table = table.set_column(table.schema.get_field_index("gpus"), "gpus", pc.cast(table.column("gpus"), pa.float64()))
    pq.write_table(table, victim)

    result = dg.materialize([raw_validation_runs], resources={"apex_data": billing_data.resource})

    assert result.success
    reasons = list((billing_data.runs_dir / "_quarantine").glob("**/*.reason.txt"))
    assert len(reasons) == 1
    assert "'gpus' is double" in reasons[0].read_text()
    assert not victim.exists()
