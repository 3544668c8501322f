"""Finding the raw event files and summarising them from their Parquet footers (no data pages read)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

__all__ = ["EventFilesSummary", "list_event_files", "summarize_event_files"]


def list_event_files(events_dir: Path) -> list[Path]:
    """Every finished ``*.parquet`` under ``events_dir``, sorted.

    Writers' ``.tmp`` files and quarantined files (``_quarantine/**/*.quarantined``) don't match the glob.
    """
    if not events_dir.is_dir():
        return []
    return sorted(events_dir.glob("**/*.parquet"))


@dataclass(frozen=True)
class EventFilesSummary:
    files: int
    rows: int
    bytes: int
    newest_event: datetime | None
    newest_mtime_ns: int


def summarize_event_files(files: list[Path]) -> EventFilesSummary:
    rows = size = newest_mtime = 0
    newest_event: datetime | None = None
    for path in files:
        stat = path.stat()
        size += stat.st_size
        newest_mtime = max(newest_mtime, stat.st_mtime_ns)
        meta = pq.read_metadata(path)
        rows += meta.num_rows
        newest_event = _max_or(newest_event, _footer_max(meta, "ts_start"))
    return EventFilesSummary(len(files), rows, size, newest_event, newest_mtime)


def _footer_max(meta: pq.FileMetaData, column: str) -> datetime | None:
    names = meta.schema.names
    if column not in names:
        return None
    idx = names.index(column)
    newest = None
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(idx).statistics
        if stats is not None and stats.has_min_max:
            newest = _max_or(newest, stats.max)
    return newest


def _max_or(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    return candidate if current is None else max(current, candidate)
