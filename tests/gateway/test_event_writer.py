"""The Parquet writer: partitions, atomic files, spill instead of loss, flush on close."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow.parquet as pq

from gateway.events.schema import EVENT_SCHEMA, SCHEMA_VERSION, empty_event
from gateway.events.writer import EventWriter


def make_event(ts: datetime) -> dict:
    ev = empty_event()
    ev.update(
        event_id=uuid.uuid4().hex,
        request_id=uuid.uuid4().hex,
        gateway_id="t",
        ts_start=ts,
        ts_end=ts,
        endpoint="/v1/chat/completions",
        is_stream=False,
        is_simulated=True,
        http_status=200,
        usage_source="none",
        price_status="no_usage",
    )
    return ev


def read_all(events_dir) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(f) for f in events_dir.glob("date=*/hour=*/*.parquet")])


def test_partitions_by_date_and_hour_and_writes_the_schema_file(tmp_path):
    w = EventWriter(tmp_path, gateway_id="t", flush_seconds=60)
    t = datetime(2026, 11, 28, 13, 59, 59, tzinfo=UTC)
    for ts in (t, t + timedelta(seconds=2), t + timedelta(days=1)):
        w.record(make_event(ts))
    w.close()
    dirs = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("date=*/hour=*"))
    assert dirs == ["date=2026-11-28/hour=13", "date=2026-11-28/hour=14", "date=2026-11-29/hour=13"]
    assert pq.read_schema(tmp_path / f"_schema_v{SCHEMA_VERSION}.parquet").equals(EVENT_SCHEMA, check_metadata=False)
    assert not list(tmp_path.rglob("*.tmp"))
    assert w.snapshot()["written"] == 3


def test_rolls_files_by_row_count(tmp_path):
    w = EventWriter(tmp_path, gateway_id="t", flush_rows=10, flush_seconds=60)
    now = datetime.now(UTC)
    for _ in range(35):
        w.record(make_event(now))
    w.close()
    assert len(list(tmp_path.glob("date=*/hour=*/*.parquet"))) >= 4
    assert read_all(tmp_path).height == 35


def test_full_queue_spills_to_disk_and_nothing_is_lost(tmp_path):
    w = EventWriter(tmp_path, gateway_id="t", queue_size=5, flush_seconds=60)
    now = datetime.now(UTC)
    ids = []
    for _ in range(500):
        ev = make_event(now)
        ids.append(ev["event_id"])
        w.record(ev)
    stats = w.snapshot()
    assert stats["spilled"] > 0 and stats["dropped"] == 0
    w.close()
    df = read_all(tmp_path)
    assert sorted(df["event_id"].to_list()) == sorted(ids)
    assert not list((tmp_path / "_spill").glob("*.jsonl"))


def test_event_arriving_after_close_is_spilled_and_ingested_by_the_next_start(tmp_path):
    w = EventWriter(tmp_path, gateway_id="old", flush_seconds=60)
    w.close()
    ev = make_event(datetime.now(UTC))
    w.record(ev)  # e.g. a request that finished after the shutdown grace period
    assert w.snapshot()["spilled"] == 1
    assert not list(tmp_path.glob("date=*/hour=*/*.parquet"))
    w2 = EventWriter(tmp_path, gateway_id="next", flush_seconds=60)
    w2.close()
    assert read_all(tmp_path)["event_id"].to_list() == [ev["event_id"]]
