"""Background Parquet writer for gateway events.

The request path only calls ``EventWriter.record(item)``: an append to a bounded in-memory deque, with no
lock and no thread wake-up (a per-event wake-up hands the GIL back and forth and showed up as tail latency in
the bench). A daemon thread drains the deque every ``drain_seconds``, turns each item into an event row with
``prepare`` (so building the row is off the request path too), and rolls a Parquet file per ``date=/hour=``
partition when it holds ``flush_rows`` events or its oldest event is ``flush_seconds`` old. Files are written
under a ``.tmp`` name and renamed into place, so readers never see a partial file.

``prepare`` (and ``record`` without one) may give an event as a mapping or, cheaper, as a row: a tuple of the
values in ``FIELD_NAMES`` order (``gateway.events.rows``). Rows are kept as tuples until they are cut into
columns, and ``observe`` (the gateway's metrics) is handed each drain's rows in one call: the writer thread shares
the gateway's core with the request path, so every microsecond per event counts.

When the queue is full (the disk or the writer cannot keep up) an event is *spilled*, not dropped: it is
appended as one JSON line to ``_spill/spill-<gateway>.jsonl`` and folded into Parquet by the writer later (and
on the next start). Only if that append fails too is an event counted as dropped. Both counts are exposed.
A graceful shutdown (``close``) drains the queue and the spill files.
"""

from __future__ import annotations

import logging
import operator
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from contracts.events import EVENT_SCHEMA, FIELD_NAMES, SCHEMA_VERSION

__all__ = ["EventWriter", "WriterStats", "ensure_schema_file"]

log = logging.getLogger("apex.events")

_TS_FIELDS = ("ts_start", "ts_end")
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


def _as_event(row: Row | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(row, tuple):
        return dict(zip(FIELD_NAMES, row, strict=True))
    return row


@dataclass
class _Part:
    """One ``date=/hour=`` partition's events not yet in a file: Arrow batches plus the rows of the last drains."""

    oldest: float
    part: tuple[str, str]
    rows: list[Row] = field(default_factory=list)
    batches: list[pa.RecordBatch] = field(default_factory=list)
    batched: int = 0

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


def _partition(ts: datetime) -> tuple[str, str]:
    return f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}", f"{ts.hour:02d}"


def ensure_schema_file(events_dir: Path) -> Path:
    """A zero-row file at the root so readers always find every column, even before the first event."""
    path = events_dir / f"_schema_v{SCHEMA_VERSION}.parquet"
    if not path.exists():
        events_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(EVENT_SCHEMA.empty_table(), tmp)
        os.replace(tmp, path)
    return path


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


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
        prepare: Callable[[Any], Row | Mapping[str, Any]] | None = None,
        observe: Callable[[list[Row]], None] | None = None,
    ) -> None:
        """``observe``, when given, is called with the rows of each drain (in batches of at most ``_ARROW_BITE``),
        from the writer thread; and with a single row from ``record``'s thread for an event that is spilled."""
        self.events_dir = Path(events_dir)
        self.gateway_id = gateway_id
        self.queue_size = queue_size
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.drain_seconds = drain_seconds
        self.stats = WriterStats()
        self._prepare = prepare or (lambda item: item)
        self._observe = observe
        self._pending: deque[Any] = deque()
        self._spill_dir = self.events_dir / "_spill"
        self._spill_path = self._spill_dir / f"spill-{gateway_id}.jsonl"
        self._spill_lock = threading.Lock()
        self._stop = threading.Event()
        self._seq = 0
        self._closed = False
        ensure_schema_file(self.events_dir)
        self._thread = threading.Thread(target=self._run, name="apex-event-writer", daemon=True)
        self._thread.start()

    # -- request path ---------------------------------------------------------------------------------------

    def record(self, item: Any) -> None:
        """Accept one event (or an item ``prepare`` turns into one) without blocking. Never raises."""
        self.stats.accepted += 1
        if not self._closed and len(self._pending) < self.queue_size:
            self._pending.append(item)
            return
        try:
            row = _row_of(self._prepare(item))
        except Exception:
            self.stats.dropped += 1
            log.exception("event dropped: it could not be built")
            return
        self._observe_rows([row])
        self._spill(row)

    def queued(self) -> int:
        return len(self._pending)

    def snapshot(self) -> dict[str, int]:
        return self.stats.as_dict(self.queued())

    def _spill(self, event: Row | Mapping[str, Any]) -> None:
        try:
            event = _as_event(event)
            line = orjson.dumps(event, default=_to_jsonable) + b"\n"
            with self._spill_lock:
                self._spill_dir.mkdir(parents=True, exist_ok=True)
                with open(self._spill_path, "ab") as fh:
                    fh.write(line)
                self.stats.spilled += 1
        except Exception:
            self.stats.dropped += 1
            log.exception(
                "event %s dropped: the queue is full and the spill file cannot be written",
                event.get("event_id") if isinstance(event, Mapping) else None,
            )

    # -- writer thread --------------------------------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Drain everything to Parquet (queue, then spill files) and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout)

    def _drain(self, buffers: dict[tuple[int, int, int, int], _Part]) -> None:
        pending = self._pending
        popleft = pending.popleft
        prepare = self._prepare
        flush_rows = self.flush_rows
        drained: list[Row] = []
        key_now = None  # the partition of the previous event (and buf its buffer): almost every event's too
        buf = None
        while pending:
            item = popleft()
            try:
                row = prepare(item)
                if type(row) is not tuple or len(row) != _N_FIELDS:
                    row = _row_of(row)
                ts = row[_TS_START]
                key = (ts.year, ts.month, ts.day, ts.hour)
            except Exception:
                self.stats.write_errors += 1
                self.stats.dropped += 1
                log.exception("an event could not be built and is lost")
                continue
            drained.append(row)
            if len(drained) >= _ARROW_BITE:
                self._observe_rows(drained)
                drained = []
            if key != key_now or buf is None:
                key_now = key
                buf = buffers.get(key)
                if buf is None:
                    buf = buffers[key] = _Part(time.monotonic(), _partition(ts))
            rows = buf.rows
            rows.append(row)
            if len(rows) + buf.batched >= flush_rows:
                self._flush(key, buffers)
                buf = None
            elif len(rows) >= _ARROW_BITE:
                # Convert to Arrow in bites of _ARROW_BITE rows as they fill, not all at once when the file rolls:
                # a 20k-row conversion in one C call held the GIL (no switch interval applies) and stalled requests
                # for tens of ms (bench: c=1 p99 through the gateway went from 3.4 ms to 1.8 ms with 512-row bites).
                # ``_to_arrow`` converts a column per call, so a bite holds the GIL for one column at a time.
                self._to_arrow(buf)
        if drained:
            self._observe_rows(drained)

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
            for row in rows:
                self._spill(row)
            return
        buf.batches.append(batch)
        buf.batched += batch.num_rows

    def _run(self) -> None:
        buffers: dict[tuple[int, int, int, int], _Part] = {}
        self._ingest_spills(include_own=True)
        while True:
            stopping = self._stop.wait(self.drain_seconds)
            self._drain(buffers)
            if stopping:
                # record() may still have appended after _closed flipped; take those too
                self._drain(buffers)
                for key in list(buffers):
                    self._flush(key, buffers)
                self._ingest_spills(include_own=True)
                return
            now = time.monotonic()
            for key in list(buffers):
                buf = buffers[key]
                if buf.size() >= self.flush_rows or now - buf.oldest >= self.flush_seconds:
                    self._flush(key, buffers)
            if self.stats.spilled and self._spill_path.exists() and len(self._pending) < self.queue_size // 2:
                self._ingest_spills(include_own=True)

    def _flush(self, key: tuple[int, int, int, int], buffers: dict[tuple[int, int, int, int], _Part]) -> None:
        buf = buffers.pop(key, None)
        if buf is None:
            return
        self._to_arrow(buf)
        if buf.batches:
            self._write(buf.part, pa.Table.from_batches(buf.batches, schema=EVENT_SCHEMA))

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
            for row in table.to_pylist():
                self._spill(row)
            return
        self.stats.written += table.num_rows
        self.stats.files += 1

    def _ingest_spills(self, *, include_own: bool) -> None:
        """Fold spill files (this gateway's, and any left by a crashed one) into Parquet."""
        if not self._spill_dir.exists():
            return
        for path in sorted(self._spill_dir.glob("spill-*.jsonl")):
            if path != self._spill_path and not include_own:
                continue
            claimed = path.with_name(path.name + f".ingest-{os.getpid()}")
            with self._spill_lock:
                try:
                    os.replace(path, claimed)
                except FileNotFoundError:
                    continue
            by_part: dict[tuple[str, str], list[Row]] = defaultdict(list)
            bad = 0
            for line in claimed.read_bytes().splitlines():
                try:
                    row = orjson.loads(line)
                    for f in _TS_FIELDS:
                        row[f] = datetime.fromisoformat(row[f]).astimezone(UTC)
                except Exception:
                    bad += 1
                    continue
                by_part[_partition(row["ts_start"])].append(_row_of(row))
            spilled_before = self.stats.spilled
            for part, rows in by_part.items():
                buf = _Part(0.0, part, rows=rows)
                self._to_arrow(buf)
                if buf.batches:
                    self._write(part, pa.Table.from_batches(buf.batches, schema=EVENT_SCHEMA))
            if self.stats.spilled == spilled_before:
                claimed.unlink()
            else:
                claimed.rename(claimed.with_name(path.name + f".failed-{int(time.time())}"))
            if bad:
                log.error("%s: %d unreadable spill lines skipped", path, bad)
