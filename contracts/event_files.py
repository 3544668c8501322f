"""Finding the raw event files and summarising them from their Parquet footers (no data pages read).

The gateway files events by UTC day and hour: ``<events dir>/date=YYYY-MM-DD/hour=HH/*.parquet``; the day
folder is the event-day partition a file belongs to (dagster_project/partitions.py). Files outside a day
folder (the zero-row ``_schema_v<N>.parquet`` at the root) belong to no day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

__all__ = [
    "EventFilesSummary",
    "day_folder",
    "event_day",
    "event_days",
    "files_by_day",
    "list_event_files",
    "summarize_event_files",
]

_DAY_FOLDER = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def day_folder(events_dir: Path, day: str) -> Path:
    """The folder of the events of UTC day ``day`` (``YYYY-MM-DD``)."""
    return events_dir / f"date={day}"


def list_event_files(events_dir: Path, days: Iterable[str] | None = None) -> list[Path]:
    """Every finished ``*.parquet`` under ``events_dir`` (``days`` given: only under those days' folders), sorted.

    Writers' ``.tmp`` files and quarantined files (``_quarantine/**/*.quarantined``) don't match the glob.
    """
    if not events_dir.is_dir():
        return []
    if days is None:
        return sorted(events_dir.glob("**/*.parquet"))
    return sorted(path for day in set(days) for path in day_folder(events_dir, day).glob("**/*.parquet"))


def event_day(events_dir: Path, path: Path) -> str | None:
    """The UTC day (``YYYY-MM-DD``) whose folder holds ``path``, or None for a file outside the day folders."""
    try:
        top = path.relative_to(events_dir).parts[0]
    except (ValueError, IndexError):
        return None
    match = _DAY_FOLDER.match(top)
    return match.group(1) if match else None


def files_by_day(events_dir: Path, files: Iterable[Path]) -> dict[str, list[Path]]:
    """``files`` grouped by their UTC day (files outside the day folders left out), days in order."""
    grouped: dict[str, list[Path]] = {}
    for path in sorted(files):
        day = event_day(events_dir, path)
        if day is not None:
            grouped.setdefault(day, []).append(path)
    return dict(sorted(grouped.items()))


def event_days(events_dir: Path) -> list[str]:
    """The UTC days that have at least one event file, in order."""
    return list(files_by_day(events_dir, list_event_files(events_dir)))


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
