"""Run ``apex_all`` for each UTC day that got new event files, one run per day (its partition).

The cursor remembers, per day folder, the newest file mtime and the number of files seen. A day gets a run
when it has a file newer than that mtime (a new or rewritten file) or more files than before (a file that
arrived with an older mtime, e.g. copied with its timestamps); a day that only lost files (moved to
``_quarantine/`` by its own run) does not need another run, its cursor entry is just updated.
"""

from __future__ import annotations

import json

import dagster as dg

from contracts.event_files import files_by_day, list_event_files
from dagster_project.jobs import apex_all
from dagster_project.partitions import is_event_day
from dagster_project.resources import ApexDataResource

__all__ = ["DaySeen", "changed_days", "new_event_files_sensor", "parse_cursor"]

DaySeen = tuple[int, int]
"""What the cursor keeps per day: (newest file mtime in ns, number of files)."""


def parse_cursor(cursor: str | None) -> dict[str, DaySeen]:
    """The per-day cursor, ``{"YYYY-MM-DD": [mtime_ns, files], ...}``.

    The cursor of the unpartitioned sensor (``"<newest mtime ns>:<file count>"``) becomes ``{"*": [mtime, 0]}``:
    every day whose files are all older than that mtime was already processed.
    """
    if not cursor:
        return {}
    if cursor.startswith("{"):
        return {day: (int(seen[0]), int(seen[1])) for day, seen in json.loads(cursor).items()}
    newest, _, _ = cursor.partition(":")
    return {"*": (int(newest), 0)} if newest.isdigit() else {}


def changed_days(previous: dict[str, DaySeen], current: dict[str, DaySeen]) -> list[str]:
    """The days of ``current`` with a file newer than, or more files than, ``previous`` saw."""
    legacy = previous.get("*")
    changed = []
    for day, (mtime, count) in current.items():
        seen = previous.get(day)
        if seen is None:
            if legacy is None or mtime > legacy[0]:
                changed.append(day)
        elif mtime > seen[0] or count > seen[1]:
            changed.append(day)
    return changed


@dg.sensor(
    job=apex_all,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Runs apex_all for each UTC day whose event files appeared or changed, with that day as the partition "
        "(cursor: newest mtime and file count per day folder)."
    ),
)
def new_event_files_sensor(
    context: dg.SensorEvaluationContext, apex_data: ApexDataResource
) -> dg.SensorResult | dg.SkipReason:
    events_dir = apex_data.events_path
    by_day = files_by_day(events_dir, list_event_files(events_dir))
    if not by_day:
        return dg.SkipReason(f"no event files under {apex_data.events_dir}")
    current = {day: (max(p.stat().st_mtime_ns for p in files), len(files)) for day, files in by_day.items()}
    cursor = json.dumps({day: list(seen) for day, seen in current.items()}, separators=(",", ":"))
    changed = changed_days(parse_cursor(context.cursor), current)
    outside = [day for day in changed if not is_event_day(day)]
    if outside:
        context.log.warning(f"event files for days outside the event-day partitions, not processed: {outside}")
    run_requests = [
        dg.RunRequest(run_key=f"{day}:{current[day][0]}:{current[day][1]}", partition_key=day)
        for day in changed
        if day not in outside
    ]
    if not run_requests:
        return dg.SensorResult(
            skip_reason=dg.SkipReason("no new event files since the last run requests"), cursor=cursor
        )
    return dg.SensorResult(run_requests=run_requests, cursor=cursor)
