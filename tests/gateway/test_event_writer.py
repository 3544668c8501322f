"""The Parquet writer: partitions, atomic files, spill instead of loss, flush on close."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow.parquet as pq

from contracts.events import EVENT_SCHEMA, FIELD_NAMES, SCHEMA_VERSION, empty_event
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


def as_row(ev: dict) -> tuple:
    return tuple(ev[name] for name in FIELD_NAMES)


def test_rows_as_tuples_from_prepare_are_written_like_dicts(tmp_path):
    t = datetime(2026, 11, 28, 13, 59, 59, tzinfo=UTC)
    events = [make_event(t + timedelta(seconds=i)) for i in range(1200)]  # two hours, several Arrow bites
    events[0]["tags"] = ["a", "b"]
    events[1]["prompt_text"] = "[]"
    w = EventWriter(tmp_path / "rows", gateway_id="t", flush_seconds=60, prepare=as_row)
    d = EventWriter(tmp_path / "dicts", gateway_id="t", flush_seconds=60)
    for ev in events:
        w.record(ev)
        d.record(dict(ev))
    w.close()
    d.close()
    assert w.snapshot() == d.snapshot()
    assert w.snapshot()["written"] == 1200
    got, want = read_all(tmp_path / "rows").sort("ts_start"), read_all(tmp_path / "dicts").sort("ts_start")
    assert got.equals(want)
    assert got["event_id"].to_list() == [ev["event_id"] for ev in events]
    assert got["tags"][0].to_list() == ["a", "b"]


def test_a_mapping_missing_fields_writes_nulls(tmp_path):
    w = EventWriter(tmp_path, gateway_id="t", flush_seconds=60)
    ev = make_event(datetime.now(UTC))
    for name in ("end_user", "prompt_hash", "cost_usd"):
        del ev[name]
    w.record(ev)
    w.close()
    df = read_all(tmp_path)
    assert df.height == 1 and df["end_user"][0] is None and df["cost_usd"][0] is None


def test_a_malformed_row_is_counted_as_dropped_not_silently_lost(tmp_path):
    w = EventWriter(tmp_path, gateway_id="t", flush_seconds=60, prepare=lambda ev: as_row(ev)[:-1])
    w.record(make_event(datetime.now(UTC)))
    w.close()
    stats = w.snapshot()
    assert stats["dropped"] == 1 and stats["write_errors"] == 1 and stats["written"] == 0


def test_tuple_rows_spill_as_json_events_and_are_ingested(tmp_path):
    w = EventWriter(tmp_path, gateway_id="t", queue_size=3, flush_seconds=60, prepare=as_row)
    now = datetime.now(UTC)
    ids = []
    for _ in range(300):
        ev = make_event(now)
        ids.append(ev["event_id"])
        w.record(ev)
    assert w.snapshot()["spilled"] > 0
    w.close()
    assert sorted(read_all(tmp_path)["event_id"].to_list()) == sorted(ids)
    assert w.snapshot()["dropped"] == 0


def test_column_by_column_conversion_equals_from_pydict(tmp_path):
    import pyarrow as pa

    from gateway.events.writer import _Part

    t = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
    events = [make_event(t + timedelta(microseconds=i)) for i in range(600)]
    events[3].update(tags=["x"], cost_usd=1e-9, prompt_tokens=2**40, cache_similarity=0.5, prompt_text="é ✓")
    w = EventWriter(tmp_path, gateway_id="t", flush_seconds=60)
    w.close()
    buf = _Part(0.0, ("2026-11-28", "13"), rows=[as_row(ev) for ev in events])
    w._to_arrow(buf)
    want = pa.RecordBatch.from_pydict({n: [ev[n] for ev in events] for n in FIELD_NAMES}, schema=EVENT_SCHEMA)
    assert buf.batched == 600 and buf.batches[0].equals(want)
    assert buf.batches[0].schema.equals(EVENT_SCHEMA, check_metadata=True)


def test_observe_gets_every_row_once_in_order_a_drain_at_a_time(tmp_path):
    seen: list[list[tuple]] = []
    w = EventWriter(tmp_path, gateway_id="t", flush_seconds=60, prepare=as_row, observe=seen.append)
    events = [make_event(datetime.now(UTC)) for _ in range(1500)]
    for ev in events[:1400]:
        w.record(ev)
    time.sleep(0.1)
    for ev in events[1400:]:
        w.record(ev)
    w.close()
    assert [row[1] for batch in seen for row in batch] == [ev["event_id"] for ev in events]
    assert max(len(batch) for batch in seen) <= 512 and len(seen) >= 4
    assert w.snapshot()["written"] == 1500


def test_spilled_events_are_observed_too_and_a_failing_observer_loses_no_event(tmp_path):
    seen = []

    def observe(rows: list[tuple]) -> None:
        seen.extend(rows)
        raise RuntimeError("metrics are broken")

    w = EventWriter(tmp_path, gateway_id="t", queue_size=3, flush_seconds=60, prepare=as_row, observe=observe)
    events = [make_event(datetime.now(UTC)) for _ in range(300)]
    for ev in events:
        w.record(ev)
    assert w.snapshot()["spilled"] > 0
    w.close()
    assert sorted(row[1] for row in seen) == sorted(ev["event_id"] for ev in events)  # each once
    assert sorted(read_all(tmp_path)["event_id"].to_list()) == sorted(ev["event_id"] for ev in events)
    assert w.snapshot()["dropped"] == 0
