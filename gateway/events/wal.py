"""The events' write-ahead log: append-only segment files of JSON lines, one per accepted event.

A record is ``[row, charges]``: the event's values in ``FIELD_NAMES`` order and the spend it carries (``Charges``:
the key's lifetime spend and each budget window the call settled against), or ``null`` when that spend is
counted elsewhere. Segments are named ``wal-<ns>-<tag>.log`` so they sort by creation. A torn last line (a
crash mid-write) is skipped on read. Old spill files (one event mapping per line) read as records without
charges.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from contracts.events import FIELD_NAMES

__all__ = ["Charges", "SegmentLog", "decode", "encode", "partition_of", "read_segment", "segment_name"]

log = logging.getLogger("apex.events")

Charges = tuple[str | None, float, list[tuple[str, str, str, float]]]
"""(key_id, lifetime usd, [(scope, scope_id, window, usd), ...]): what one call adds to the spend counters."""

_N_FIELDS = len(FIELD_NAMES)
_TS_INDEXES = (FIELD_NAMES.index("ts_start"), FIELD_NAMES.index("ts_end"))


def partition_of(ts: datetime) -> tuple[str, str]:
    """The ``date=/hour=`` partition of an event that started at ``ts``."""
    return f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}", f"{ts.hour:02d}"


def encode(row: tuple[Any, ...], charges: Charges | None) -> bytes:
    return orjson.dumps((row, charges)) + b"\n"


def decode(line: bytes) -> tuple[tuple[Any, ...], Charges | None]:
    """A record's row (timestamps back to datetimes) and charges; raises ``ValueError`` on a malformed line."""
    value = orjson.loads(line)
    values: list[Any]
    if isinstance(value, Mapping):  # an old spill line: an event mapping, no charges
        values = [value.get(name) for name in FIELD_NAMES]
        charges = None
    else:
        values, raw = value
        if len(values) != _N_FIELDS:
            raise ValueError(f"a record has {len(values)} values, the schema {_N_FIELDS}")
        charges = None if raw is None else (raw[0], float(raw[1]), [tuple(b) for b in raw[2]])
    for i in _TS_INDEXES:
        values[i] = datetime.fromisoformat(values[i])
    return tuple(values), charges


def read_segment(path: Path) -> Iterator[tuple[int, tuple[Any, ...], Charges | None]]:
    """Every whole record of ``path`` with the offset just past it. A line that does not parse is logged and
    skipped (the torn tail of a crash, or damage)."""
    data = path.read_bytes()
    start = 0
    bad = 0
    while start < len(data):
        end = data.find(b"\n", start)
        if end < 0:
            log.warning("%s: a torn last record (%d bytes) skipped", path.name, len(data) - start)
            break
        try:
            row, charges = decode(data[start:end])
        except Exception:
            bad += 1
        else:
            yield end + 1, row, charges
        start = end + 1
    if bad:
        log.error("%s: %d unreadable records skipped", path.name, bad)


def segment_name(tag: str) -> str:
    return f"wal-{time.time_ns():020d}-{tag}.log"


@dataclass
class _Open:
    name: str
    fd: int
    size: int
    opened: float


class SegmentLog:
    """The segment being appended to, rotated by age or size. Thread-safe: ``append`` holds a lock for the write
    (and fsync), so records from several threads never interleave."""

    def __init__(
        self,
        directory: Path,
        *,
        tag: str,
        fsync: bool,
        fsync_interval_s: float = 0.0,
        max_bytes: int = 64 << 20,
        max_age_s: float = 30.0,
    ) -> None:
        """``fsync_interval_s`` > 0: appends are written at once (a killed process loses nothing written) but
        fsynced at most that often (``sync_if_due``), one fsync for many appends; 0: every append is fsynced."""
        self.dir = directory
        self.tag = tag
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self._dirty = False
        self._last_fsync = time.monotonic()
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.lock = threading.Lock()
        self._open: _Open | None = None
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def active(self) -> str | None:
        return self._open.name if self._open else None

    def append(self, data: bytes) -> tuple[str, int]:
        """Write ``data`` (whole records) and return the segment and the offset just past it."""
        with self.lock:
            seg = self._open
            if seg is None or seg.size >= self.max_bytes or time.monotonic() - seg.opened >= self.max_age_s:
                seg = self._rotate()
            view = memoryview(data)
            while view:
                view = view[os.write(seg.fd, view) :]
            if self.fsync:
                if self.fsync_interval_s <= 0:
                    os.fsync(seg.fd)
                else:
                    self._dirty = True
                    self._sync_if_due_locked(time.monotonic())
            seg.size += len(data)
            return seg.name, seg.size

    def sync_if_due(self) -> None:
        """fsync what was appended since the last fsync if the interval has passed (the writer calls it on
        every drain, so a quiet log is still synced within the interval)."""
        if self._dirty:
            with self.lock:
                self._sync_if_due_locked(time.monotonic())

    def _sync_if_due_locked(self, now: float) -> None:
        if self._dirty and self._open is not None and now - self._last_fsync >= self.fsync_interval_s:
            os.fsync(self._open.fd)
            self._dirty = False
            self._last_fsync = now

    def _rotate(self) -> _Open:
        self._close_open()
        name = segment_name(self.tag)
        fd = os.open(self.dir / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if self.fsync:  # the new name must survive a power loss too
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._open = _Open(name, fd, 0, time.monotonic())
        return self._open

    def _close_open(self) -> None:
        if self._open is not None:
            if self._dirty:  # what an fsync interval left unsynced is synced before the segment is left
                os.fsync(self._open.fd)
                self._dirty = False
            os.close(self._open.fd)
            self._open = None

    def close(self) -> None:
        with self.lock:
            self._close_open()
