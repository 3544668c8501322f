"""Background Parquet writer for gateway events, behind a write-ahead log.

(Over 400 lines: one thread's state machine — drain, log, buffer, roll, spill, seal — whose steps share that
thread's state; the log format, replay and spend ledger are their own modules.)

The request path only calls ``EventWriter.record(item, charges)``: an append to a bounded in-memory deque, with
no lock and no thread wake-up (a per-event wake-up hands the GIL back and forth and showed up as tail latency in
the bench). A daemon thread drains the deque every ``drain_seconds``, turns each item into an event row with
``prepare`` (so building the row is off the request path too), appends the drain's rows with the spend they carry
to the write-ahead log (``gateway.events.wal``), and only then buffers them for Parquet: it rolls a file per
``date=/hour=`` partition when it holds ``flush_rows`` events or its oldest event is ``flush_seconds`` old. Files
are written under a ``.tmp`` name and renamed into place, so readers never see a partial file.

Durability: a ``kill -9`` loses only what is still in the deque (at most ``drain_seconds`` of answered calls),
or nothing in ``sync`` mode, where ``record`` writes the log itself before the response goes out. The spend in
the log reaches ``gateway.db`` through the ``SpendLedger`` (exactly once, by log position), and at start the log
is replayed (``gateway.events.replay``): events not yet in a Parquet file are written, by event id, once. A
segment of the log is deleted when all its events are in Parquet and its spend is committed.

``prepare`` (and ``record`` without one) may give an event as a mapping or, cheaper, as a row: a tuple of the
values in ``FIELD_NAMES`` order (``gateway.events.rows``). Rows are kept as tuples until they are cut into
columns, and ``observe`` (the gateway's metrics) is handed each drain's rows in one call: the writer thread shares
the gateway's core with the request path, so every microsecond per event counts.

When the queue is full (the disk or the writer cannot keep up) an event is *spilled*, not dropped: it is
appended as one log record to ``_spill/spill-<gateway>.jsonl``, which the writer later moves into the log as a
segment of its own (so its spend is committed the same way). Only if that append fails too is an event counted as
dropped. Both counts are exposed. A graceful shutdown (``close``) drains the queue and the spill files and leaves
the log empty; ``seal`` (a drain that ran out of time) only moves the queue into the log.
"""

from __future__ import annotations

import logging
import operator
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from contracts.events import EVENT_SCHEMA, FIELD_NAMES, SCHEMA_VERSION
from gateway.events.ledger import SpendLedger, SpendTotals
from gateway.events.replay import claim_spill_files, replay_log
from gateway.events.wal import Charges, SegmentLog, encode, partition_of, read_segment

__all__ = ["EventWriter", "WriterStats", "ensure_schema_file"]

log = logging.getLogger("apex.events")

_ARROW_BITE = 512
_N_FIELDS = len(FIELD_NAMES)
_TS_START = FIELD_NAMES.index("ts_start")
_ALL_FIELDS = operator.itemgetter(*FIELD_NAMES)
_TYPES = tuple(f.type for f in EVENT_SCHEMA)
# Columns with a new value in every event are not dictionary-encoded: the writer would build (and write) a
# dictionary as large as the column itself. The others repeat a lot (models, keys, statuses...): dictionary-encoded.
_UNIQUE_PER_EVENT = {"event_id", "request_id", "ts_start", "ts_end", "prompt_hash", "prompt_text"}
_DICTIONARY_COLUMNS = [name for name in FIELD_NAMES if name not in _UNIQUE_PER_EVENT]

Row = tuple[Any, ...]
"""An event's values in ``FIELD_NAMES`` order."""

_Pos = tuple[str, int] | None
"""Where a record already is in the log (segment, offset past it): set in ``sync`` mode, None otherwise."""

_Key = tuple[int, int, int, int]


def _row_of(event: Row | Mapping[str, Any]) -> Row:
    """An event as a row tuple; a mapping may lack fields (they are null), as ``empty_event`` allows."""
    if type(event) is tuple:
        if len(event) != _N_FIELDS:
            raise ValueError(f"an event row has {len(event)} values, the schema {_N_FIELDS}")
        return event
    try:
        return _ALL_FIELDS(event)
    except KeyError:
        return tuple(event.get(name) for name in FIELD_NAMES)  # type: ignore[union-attr]


@dataclass
class _Part:
    """One ``date=/hour=`` partition's events not yet in a file: Arrow batches plus the rows of the last drains,
    and the log segments those events came from (a segment is kept until no part holds its events)."""

    oldest: float
    part: tuple[str, str]
    rows: list[Row] = field(default_factory=list)
    batches: list[pa.RecordBatch] = field(default_factory=list)
    batched: int = 0
    segments: set[str] = field(default_factory=set)

    def size(self) -> int:
        return len(self.rows) + self.batched


@dataclass
class WriterStats:
    accepted: int = 0
    written: int = 0
    spilled: int = 0
    dropped: int = 0
    files: int = 0
    write_errors: int = 0
    wal_errors: int = 0
    replayed: int = 0

    def as_dict(self, queued: int) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "queued": queued,
            "written": self.written,
            "spilled": self.spilled,
            "dropped": self.dropped,
            "files": self.files,
            "write_errors": self.write_errors,
        }


def ensure_schema_file(events_dir: Path) -> Path:
    """A zero-row file at the root so readers always find every column, even before the first event."""
    path = events_dir / f"_schema_v{SCHEMA_VERSION}.parquet"
    if not path.exists():
        events_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(EVENT_SCHEMA.empty_table(), tmp)
        os.replace(tmp, path)
    return path


class EventWriter:
    def __init__(
        self,
        events_dir: Path,
        *,
        gateway_id: str,
        queue_size: int = 100_000,
        flush_rows: int = 20_000,
        flush_seconds: float = 5.0,
        drain_seconds: float = 0.01,
        durability: Literal["batch", "sync"] = "batch",
        wal_fsync: bool = True,
        wal_fsync_seconds: float = 0.1,
        ledger: SpendLedger | None = None,
        commit_seconds: float = 1.0,
        prepare: Callable[[Any], Row | Mapping[str, Any]] | None = None,
        observe: Callable[[list[Row]], None] | None = None,
    ) -> None:
        """``observe``, when given, is called with the rows of each drain (in batches of at most ``_ARROW_BITE``),
        from the writer thread; and with a single row from ``record``'s thread for an event that is spilled.
        ``ledger`` persists the spend the records carry (without one, charges are logged but not counted).
        The log is replayed here, before the thread starts: construct the writer before loading counters."""
        self.events_dir = Path(events_dir)
        self.gateway_id = gateway_id
        self.queue_size = queue_size
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.drain_seconds = drain_seconds
        self.sync = durability == "sync"
        self.commit_seconds = commit_seconds
        self.stats = WriterStats()
        self._prepare = prepare or (lambda item: item)
        self._observe = observe
        self._pending: deque[tuple[Any, Charges | None, _Pos]] = deque()
        self._spill_dir = self.events_dir / "_spill"
        self._spill_path = self._spill_dir / f"spill-{gateway_id}.jsonl"
        self._spill_lock = threading.Lock()
        self._wal_dir = self.events_dir / "_wal"
        # batch mode writes the log every drain (a killed process loses nothing written) and fsyncs it at most
        # every ``wal_fsync_seconds``, one fsync for many drains; sync mode fsyncs each call's append
        self._wal = SegmentLog(
            self._wal_dir,
            tag=gateway_id.replace("/", "_"),
            fsync=wal_fsync,
            fsync_interval_s=0.0 if self.sync else wal_fsync_seconds,
        )
        self._ledger = ledger
        self._totals = SpendTotals()
        self._committed: dict[str, int] = {}  # segment -> offset its spend is committed to
        self._last_commit = time.monotonic()
        self._drain_lock = threading.Lock()  # held while records move from the queue to the log
        self._sealed = False
        self._stop = threading.Event()
        self._seq = 0
        self._closed = False
        ensure_schema_file(self.events_dir)
        claim_spill_files(self._spill_dir, self._wal_dir)
        self.stats.replayed = replay_log(self._wal_dir, self.events_dir, ledger, self._write_rows)
        self._thread = threading.Thread(target=self._run, name="apex-event-writer", daemon=True)
        self._thread.start()

    # -- request path ---------------------------------------------------------------------------------------

    def record(self, item: Any, charges: Charges | None = None) -> None:
        """Accept one event (or an item ``prepare`` turns into one) and the spend it carries. Never raises.

        In ``batch`` mode this only queues; in ``sync`` mode the event is in the log when this returns."""
        self.stats.accepted += 1
        if not self._closed and len(self._pending) < self.queue_size:
            if not self.sync:
                self._pending.append((item, charges, None))
                return
            try:
                row = _row_of(self._prepare(item))
                pos = self._wal.append(encode(row, charges))
            except Exception:
                self.stats.wal_errors += 1
                log.exception("an event could not be written to the write-ahead log; it is queued all the same")
                self._pending.append((item, charges, None))
                return
            self._pending.append((row, charges, pos))
            return
        try:
            row = _row_of(self._prepare(item))
        except Exception:
            self.stats.dropped += 1
            log.exception("event dropped: it could not be built")
            return
        self._observe_rows([row])
        self._spill([row], charges)

    def queued(self) -> int:
        return len(self._pending)

    def snapshot(self) -> dict[str, int]:
        return self.stats.as_dict(self.queued())

    def _spill(self, rows: Iterable[Row], charges: Charges | None = None) -> None:
        """Append rows as log records to the spill file (``charges`` go with the first: one call's spend)."""
        rows = list(rows)
        try:
            data = b"".join(encode(row, charges if i == 0 else None) for i, row in enumerate(rows))
            with self._spill_lock:
                self._spill_dir.mkdir(parents=True, exist_ok=True)
                with open(self._spill_path, "ab") as fh:
                    fh.write(data)
                    if self.sync:
                        fh.flush()
                        os.fsync(fh.fileno())
                self.stats.spilled += len(rows)
        except Exception:
            self.stats.dropped += len(rows)
            log.exception("%d events dropped: the queue is full and the spill file cannot be written", len(rows))

    # -- shutdown -------------------------------------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Drain everything to Parquet (queue, then spill files), commit the spend and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout)

    def seal(self, timeout: float = 2.0) -> int:
        """Move what is still queued into the log and stop writing it (for an exit that cannot wait for Parquet:
        the next start replays it). Returns how many events it moved. Safe from any thread."""
        self._closed = True
        if not self._drain_lock.acquire(timeout=timeout):
            log.error("the event writer is stuck; %d queued events may be lost", len(self._pending))
            return 0
        try:
            self._sealed = True
            records = []
            while self._pending:
                item, charges, pos = self._pending.popleft()
                if pos is None:
                    try:
                        records.append(encode(_row_of(self._prepare(item)), charges))
                    except Exception:
                        log.exception("an event could not be built and is lost")
            if records:
                self._wal.append(b"".join(records))
            self._wal.close()
            return len(records)
        finally:
            self._drain_lock.release()

    # -- writer thread --------------------------------------------------------------------------------------

    def _take(self) -> tuple[list[Row], Iterable[str]]:
        """Pop the queue, log what is not in the log yet, and count its spend; returns the rows in order and the
        segments they are logged in."""
        rows: list[Row] = []
        logged: dict[str, int] = {}
        with self._drain_lock:
            if self._sealed:
                return rows, ()
            pending = self._pending
            popleft = pending.popleft
            prepare = self._prepare
            totals = self._totals
            records: list[bytes] = []
            while pending:
                item, charges, pos = popleft()
                try:
                    row = item if pos is not None else prepare(item)
                    if type(row) is not tuple or len(row) != _N_FIELDS:
                        row = _row_of(row)
                except Exception:
                    self.stats.write_errors += 1
                    self.stats.dropped += 1
                    log.exception("an event could not be built and is lost")
                    continue
                rows.append(row)
                if pos is None:
                    try:
                        records.append(encode(row, charges))
                    except Exception:
                        self.stats.wal_errors += 1
                        log.exception("event %s could not be encoded for the write-ahead log", row[1])
                else:
                    logged[pos[0]] = pos[1]
                if charges is not None:
                    totals.add(*charges)
            if records:
                try:
                    seg, end = self._wal.append(b"".join(records))
                    logged[seg] = end
                except Exception:
                    self.stats.wal_errors += 1
                    log.exception("%d events could not be written to the write-ahead log", len(records))
            totals.offsets.update(logged)
        return rows, logged.keys()

    def _drain(self, buffers: dict[_Key, _Part]) -> None:
        rows, segments = self._take()
        if not rows:
            return
        flush_rows = self.flush_rows
        key_now = None  # the partition of the previous event (and buf its buffer): almost every event's too
        buf = None
        for start in range(0, len(rows), _ARROW_BITE):
            self._observe_rows(rows[start : start + _ARROW_BITE])
        for row in rows:
            ts = row[_TS_START]
            try:
                key = (ts.year, ts.month, ts.day, ts.hour)
            except AttributeError:
                self.stats.write_errors += 1
                self.stats.dropped += 1
                log.error("event %s has no start time and is lost", row[1])
                continue
            if key != key_now or buf is None:
                key_now = key
                buf = buffers.get(key)
                if buf is None:
                    buf = buffers[key] = _Part(time.monotonic(), partition_of(ts))
                buf.segments.update(segments)
            rows_ = buf.rows
            rows_.append(row)
            if len(rows_) + buf.batched >= flush_rows:
                self._flush(key, buffers)
                buf = None
            elif len(rows_) >= _ARROW_BITE:
                # Convert to Arrow in bites of _ARROW_BITE rows as they fill, not all at once when the file rolls:
                # a 20k-row conversion in one C call held the GIL (no switch interval applies) and stalled requests
                # for tens of ms (bench: c=1 p99 through the gateway went from 3.4 ms to 1.8 ms with 512-row bites).
                # ``_to_arrow`` converts a column per call, so a bite holds the GIL for one column at a time.
                self._to_arrow(buf)

    def _observe_rows(self, rows: list[Row]) -> None:
        if self._observe is None:
            return
        try:
            self._observe(rows)
        except Exception:
            log.exception("%d events could not be counted in the metrics (they are written all the same)", len(rows))

    def _to_arrow(self, buf: _Part) -> None:
        rows = buf.rows
        if not rows:
            return
        buf.rows = []
        try:
            # Column by column from Python (what RecordBatch.from_pydict does in one C call): the loop lets the
            # switch interval hand the GIL to the request path between columns (<= ~0.1 ms each for a bite) instead
            # of holding it for the whole ~1 ms bite.
            arrays = [pa.array(col, type=t) for col, t in zip(zip(*rows, strict=True), _TYPES, strict=True)]
            batch = pa.RecordBatch.from_arrays(arrays, schema=EVENT_SCHEMA)
        except Exception:
            # a row that does not fit the schema: keep every row of this bite in the spill file instead
            self.stats.write_errors += 1
            log.exception("%d events could not be converted to Arrow; moved to the spill file", len(rows))
            self._spill(rows)
            return
        buf.batches.append(batch)
        buf.batched += batch.num_rows

    def _run(self) -> None:
        buffers: dict[_Key, _Part] = {}
        while True:
            stopping = self._stop.wait(self.drain_seconds)
            self._drain(buffers)
            self._wal.sync_if_due()
            if stopping:
                # record() may still have appended after _closed flipped; take those too
                self._drain(buffers)
                for key in list(buffers):
                    self._flush(key, buffers)
                self._ingest_spills(buffers)
                for key in list(buffers):
                    self._flush(key, buffers)
                self._commit_spend()
                if not self._sealed:
                    self._wal.close()
                    self._retire(buffers, everything=True)
                return
            now = time.monotonic()
            for key in list(buffers):
                buf = buffers[key]
                if buf.size() >= self.flush_rows or now - buf.oldest >= self.flush_seconds:
                    self._flush(key, buffers)
            if self.stats.spilled and self._spill_path.exists() and len(self._pending) < self.queue_size // 2:
                self._ingest_spills(buffers)
            if now - self._last_commit >= self.commit_seconds:
                self._commit_spend()
                self._retire(buffers)

    def _commit_spend(self) -> None:
        """Persist the spend of the records logged so far with the log offsets it reaches (one transaction)."""
        self._last_commit = time.monotonic()
        with self._drain_lock:
            if self._sealed or not self._totals:
                return
            totals, self._totals = self._totals, SpendTotals()
        try:
            if self._ledger is not None:
                self._ledger.commit(totals)
        except Exception:
            log.exception("could not persist the spend of logged events; will retry")
            with self._drain_lock:  # fold it back in front of what came since
                for key_id, usd in totals.keys.items():
                    self._totals.keys[key_id] = self._totals.keys.get(key_id, 0.0) + usd
                for slot, usd in totals.windows.items():
                    self._totals.windows[slot] = self._totals.windows.get(slot, 0.0) + usd
                for seg, off in totals.offsets.items():
                    self._totals.offsets.setdefault(seg, off)
            return
        self._committed.update(totals.offsets)

    def _retire(self, buffers: dict[_Key, _Part], *, everything: bool = False) -> None:
        """Delete log segments whose events are all in Parquet (or the spill file) and whose spend is committed."""
        held: set[str] = set().union(*(b.segments for b in buffers.values())) if buffers else set()
        active = None if everything else self._wal.active
        retired = []
        for seg, off in list(self._committed.items()):
            if seg == active or seg in held:
                continue
            path = self._wal_dir / seg
            try:
                if path.stat().st_size > off:
                    continue  # records past the committed offset: not drained yet
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                log.exception("could not delete the log segment %s", seg)
                continue
            retired.append(seg)
            del self._committed[seg]
        if retired and self._ledger is not None:
            try:
                self._ledger.forget(retired)
            except Exception:
                log.exception("could not forget retired log segments (harmless: they are gone)")

    def _flush(self, key: _Key, buffers: dict[_Key, _Part]) -> None:
        buf = buffers.pop(key, None)
        if buf is None:
            return
        self._to_arrow(buf)
        if buf.batches:
            self._write(buf.part, pa.Table.from_batches(buf.batches, schema=EVENT_SCHEMA))

    def _write_rows(self, part: tuple[str, str], rows: list[Row]) -> None:
        buf = _Part(0.0, part, rows=rows)
        self._to_arrow(buf)
        if buf.batches:
            self._write(part, pa.Table.from_batches(buf.batches, schema=EVENT_SCHEMA))

    def _write(self, part: tuple[str, str], table: pa.Table) -> None:
        date, hour = part
        folder = self.events_dir / f"date={date}" / f"hour={hour}"
        self._seq += 1
        stamp = int(time.time() * 1000)
        final = folder / f"events-{self.gateway_id}-{stamp}-{self._seq:06d}.parquet"
        tmp = final.with_name(final.name + ".tmp")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, tmp, compression="zstd", use_dictionary=_DICTIONARY_COLUMNS)
            os.replace(tmp, final)
        except Exception:
            # Keep the events: park them in the spill file and let a later pass retry.
            self.stats.write_errors += 1
            log.exception("writing %s failed; %d events moved to the spill file", final, table.num_rows)
            tmp.unlink(missing_ok=True)
            self._spill(tuple(r.values()) for r in table.to_pylist())
            return
        self.stats.written += table.num_rows
        self.stats.files += 1

    def _ingest_spills(self, buffers: dict[_Key, _Part]) -> None:
        """Move spill files into the log as segments and buffer their events like drained ones."""
        # under the spill lock: an append that opened the spill file before the rename would otherwise land in a
        # segment already read here, and be lost
        with self._spill_lock:
            claimed = claim_spill_files(self._spill_dir, self._wal_dir)
        for seg in claimed:
            last = 0
            for end, row, charges in read_segment(self._wal_dir / seg):
                last = end
                ts = row[_TS_START]
                key = (ts.year, ts.month, ts.day, ts.hour)
                buf = buffers.get(key)
                if buf is None:
                    buf = buffers[key] = _Part(time.monotonic(), partition_of(ts))
                buf.rows.append(row)
                buf.segments.add(seg)
                if charges is not None:
                    with self._drain_lock:
                        self._totals.add(*charges)
            with self._drain_lock:
                self._totals.offsets[seg] = last
