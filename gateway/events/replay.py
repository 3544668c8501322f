"""Replay the events' write-ahead log at start: spend applied once (by log position), events written once (by id).

A previous process may have stopped at any point: spend committed or not, rows in Parquet or not. The records
past each segment's applied offset add their spend (one transaction with the new offsets); then every record whose
event id is not in a Parquet file written since the oldest segment began is written; only then are the segments
deleted. Running it again after a crash at any step changes nothing twice.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from contracts.events import FIELD_NAMES
from gateway.events.ledger import SpendLedger, SpendTotals
from gateway.events.wal import partition_of, read_segment, segment_name

__all__ = ["claim_spill_files", "replay_log"]

log = logging.getLogger("apex.events")

_EVENT_ID = FIELD_NAMES.index("event_id")
_TS_START = FIELD_NAMES.index("ts_start")
_CLOCK_SLACK_NS = 5_000_000_000

Row = tuple[Any, ...]


def claim_spill_files(spill_dir: Path, wal_dir: Path) -> list[str]:
    """Move spill files (and ones a crash left mid-ingest) into the log as segments of their own."""
    if not spill_dir.exists():
        return []
    claimed = []
    for path in sorted([*spill_dir.glob("spill-*.jsonl"), *spill_dir.glob("spill-*.jsonl.ingest-*")]):
        name = segment_name("spill")
        try:
            os.replace(path, wal_dir / name)
        except FileNotFoundError:
            continue
        claimed.append(name)
    return claimed


def _segment_ns(name: str) -> int:
    return int(name.split("-")[1])


def _published_ids(events_dir: Path, parts: set[tuple[str, str]], since_ns: int) -> set[str]:
    """Event ids in the Parquet files of ``parts`` written since ``since_ns`` (older files cannot hold them)."""
    seen: set[str] = set()
    for date, hour in parts:
        for path in (events_dir / f"date={date}" / f"hour={hour}").glob("*.parquet"):
            try:
                if path.stat().st_mtime_ns < since_ns:
                    continue
                seen.update(pq.read_table(path, columns=["event_id"]).column(0).to_pylist())
            except (OSError, ValueError):
                log.exception("%s could not be read while replaying the write-ahead log", path)
    return seen


def replay_log(
    wal_dir: Path,
    events_dir: Path,
    ledger: SpendLedger | None,
    write_rows: Callable[[tuple[str, str], list[Row]], None],
) -> int:
    """Bring counters and Parquet up to the log, then empty it. Returns how many events were written."""
    segments = sorted(p.name for p in wal_dir.glob("wal-*.log"))
    if not segments:
        return 0
    applied = ledger.applied() if ledger is not None else {}
    totals = SpendTotals()
    rows: dict[str, Row] = {}
    for name in segments:
        start = applied.get(name, 0)
        end = 0
        for end, row, charges in read_segment(wal_dir / name):
            rows.setdefault(row[_EVENT_ID], row)  # a row re-spilled after a failed write is in two segments
            if charges is not None and end > start:
                totals.add(*charges)
        totals.offsets[name] = max(end, start)
    if ledger is not None:
        ledger.commit(totals)
    since = _segment_ns(segments[0]) - _CLOCK_SLACK_NS
    by_part: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows.values():
        by_part[partition_of(row[_TS_START])].append(row)
    seen = _published_ids(events_dir, set(by_part), since)
    written = 0
    for part, part_rows in by_part.items():
        missing = [r for r in part_rows if r[_EVENT_ID] not in seen]
        if missing:
            write_rows(part, missing)  # a failed write parks them in the spill file: still not lost
            written += len(missing)
    for name in segments:
        (wal_dir / name).unlink(missing_ok=True)
    if ledger is not None:
        ledger.forget(segments)
    log.info(
        "write-ahead log replayed: %d segments, %d events (%d were not in Parquet yet), $%.6f of spend applied",
        len(segments),
        len(rows),
        written,
        sum(totals.keys.values()),
    )
    return written
