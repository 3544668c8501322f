"""The events' write-ahead log in-process: replayed once by event id, spend applied once by log position."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

import polars as pl
import pytest

from contracts.events import FIELD_NAMES
from gateway.events.ledger import SpendLedger
from gateway.events.writer import EventWriter
from gateway.keys import KeyStore


def _row(i: int) -> tuple:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = dict.fromkeys(FIELD_NAMES)
    event.update(
        schema_version=1,
        event_id=f"ev-{i}",
        request_id=f"req-{i}",
        gateway_id="gw",
        ts_start=now,
        ts_end=now,
        endpoint="chat",
        is_stream=False,
        is_simulated=True,
        http_status=200,
        usage_source="provider",
        price_status="priced",
        cost_usd=0.001,
    )
    return tuple(event[name] for name in FIELD_NAMES)


def _events(events_dir) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(f) for f in sorted(events_dir.glob("date=*/hour=*/*.parquet"))])


@pytest.fixture
def store(tmp_path):
    keys = KeyStore(tmp_path / "gateway.db")
    key, _ = keys.create("k", customer_id="c")
    return keys, key.key_id


def _writer(tmp_path, **kw) -> EventWriter:
    ledger = SpendLedger(tmp_path / "gateway.db", tmp_path / "events" / "_wal")
    return EventWriter(tmp_path / "events", gateway_id="gw", flush_seconds=60, ledger=ledger, **kw)


def test_sealed_events_are_replayed_once_with_their_spend(tmp_path, store):
    keys, key_id = store
    w = _writer(tmp_path, drain_seconds=60)  # nothing drains by itself: seal moves the queue into the log
    for i in range(100):
        w.record(_row(i), (key_id, 0.001, [("key", key_id, "total", 0.001)]))
    assert w.seal() == 100
    assert not list((tmp_path / "events").glob("date=*/hour=*/*.parquet"))

    for _ in range(2):  # a second start finds nothing more to do
        _writer(tmp_path).close()
    events = _events(tmp_path / "events")
    assert sorted(events["event_id"].to_list()) == sorted(f"ev-{i}" for i in range(100))
    assert keys.get(key_id).spent_usd == pytest.approx(0.1, rel=1e-9)
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        (spent,) = db.execute("SELECT spent_usd FROM period_spend WHERE scope_id = ?", (key_id,)).fetchone()
    assert spent == pytest.approx(0.1, rel=1e-9)


def test_replay_skips_events_already_in_parquet_and_spend_already_committed(tmp_path, store):
    keys, key_id = store
    w = _writer(tmp_path, drain_seconds=0.01, commit_seconds=0.0)
    for i in range(50):
        w.record(_row(i), (key_id, 0.002, []))
    # drained, logged and committed, but the process "dies" before Parquet: the log must stay for the replay
    deadline = time.monotonic() + 5
    while w.queued() or keys.get(key_id).spent_usd < 0.1 - 1e-9:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    w.seal()
    committed = keys.get(key_id).spent_usd
    assert committed == pytest.approx(0.1, rel=1e-9)
    # half of them did reach Parquet before the crash
    w2 = EventWriter(tmp_path / "other", gateway_id="x")
    for i in range(25):
        w2.record(_row(i))
    w2.close()
    target = tmp_path / "events" / "date=2025-01-02" / "hour=03"
    target.mkdir(parents=True, exist_ok=True)
    for f in (tmp_path / "other").glob("date=*/hour=*/*.parquet"):
        f.rename(target / f.name)

    _writer(tmp_path).close()
    events = _events(tmp_path / "events")
    assert events.height == 50 and events["event_id"].n_unique() == 50
    assert keys.get(key_id).spent_usd == pytest.approx(0.1, rel=1e-9), "spend applied twice"


def test_a_torn_last_record_is_skipped(tmp_path, store):
    w = _writer(tmp_path, drain_seconds=60)
    for i in range(3):
        w.record(_row(i))
    w.seal()
    (segment,) = (tmp_path / "events" / "_wal").glob("*.log")
    with segment.open("ab") as fh:
        fh.write(b'[["half a rec')
    _writer(tmp_path).close()
    assert _events(tmp_path / "events").height == 3


def test_batch_mode_shares_one_fsync_among_appends_and_syncs_before_leaving_a_segment(tmp_path, monkeypatch):
    from gateway.events import wal as wal_module

    synced: list[int] = []
    real_fsync = wal_module.os.fsync
    monkeypatch.setattr(wal_module.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    log = wal_module.SegmentLog(tmp_path / "wal", tag="t", fsync=True, fsync_interval_s=3600.0)
    log.append(b"a" * 10)
    before = len(synced)  # opening the first segment synced its directory, not the appended bytes
    log.append(b"b" * 10)
    log.sync_if_due()
    assert len(synced) == before  # written (a killed process keeps them) but not yet fsynced
    assert (tmp_path / "wal" / log.active).read_bytes() == b"a" * 10 + b"b" * 10
    log.fsync_interval_s = 0.0001
    log.sync_if_due()
    assert len(synced) == before + 1  # one fsync for both appends
    log.sync_if_due()
    assert len(synced) == before + 1  # nothing new, nothing to sync
    log.fsync_interval_s = 3600.0
    log.append(b"c")
    log.close()
    assert len(synced) == before + 2  # an unsynced tail is synced before the segment is closed
