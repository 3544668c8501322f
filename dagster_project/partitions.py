"""The UTC-day partitions of everything derived from the raw gateway events.

The gateway files each event under ``date=YYYY-MM-DD/hour=HH/`` by the UTC day and hour of its ``ts_start``
(gateway/events/writer.py), so partition ``D`` of ``raw_gateway_events`` (and of its GX check) is exactly the
files under ``<events dir>/date=D/``, and a run of ``D`` scans, quarantines and validates only those.

The dbt marts share the partitions: a run for ``D`` (or for the range ``D..E`` of a backfill, in one run)
passes ``apex_reprocess_from = D 00:00`` and ``apex_reprocess_to = E+1 00:00`` to dbt, and the incremental
models re-process exactly those hours (dbt/macros/incremental.sql: hour_watermark, hour_ceiling). Files of later
days are left to their own runs, which screen and validate them first (the GX check blocks a day's own run).

``end_offset=1`` makes today a partition already: the gateway writes today's files all day long.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

__all__ = [
    "EVENT_DAYS",
    "EVENT_DAYS_START",
    "dbt_reprocess_from",
    "is_event_day",
    "partition_range_tags",
    "run_days",
]

EVENT_DAYS_START = "2026-01-01"
"""The first day of events (the gateway's first events; billing months start the same day)."""

EVENT_DAYS = dg.DailyPartitionsDefinition(start_date=EVENT_DAYS_START, timezone="UTC", end_offset=1)


def is_event_day(day: str) -> bool:
    """Whether ``day`` (``YYYY-MM-DD``) is a partition of :data:`EVENT_DAYS` today (not before its start, not
    after today)."""
    return EVENT_DAYS.has_partition_key(day)


def run_days(context: dg.AssetExecutionContext) -> list[str] | None:
    """The UTC days a run covers: its partition, or the days of its partition range; None for a run without
    a partition (``dg.materialize([raw_gateway_events])`` in code), which covers every day as before partitioning.
    The UI, the CLI, the sensor and the schedules always give one."""
    if context.has_partition_key or context.has_partition_key_range:
        return list(context.partition_keys)
    return None


def dbt_reprocess_from(window_start: datetime) -> str:
    """The ``apex_reprocess_from`` dbt var for a partition window: its start, as naive UTC ``YYYY-MM-DD HH:MM:SS``."""
    return window_start.strftime("%Y-%m-%d %H:%M:%S")


def partition_range_tags(first_day: str, last_day: str) -> dict[str, str]:
    """Run tags making one run of ``apex_all`` (or of any selection of the event-day assets) cover the days
    ``first_day..last_day``: the tags Dagster's single-run backfills set (``context.partition_keys`` is then the
    range, ``context.partition_time_window`` spans it)."""
    return {"dagster/asset_partition_range_start": first_day, "dagster/asset_partition_range_end": last_day}
