"""Run ``apex_all`` when the gateway has written new event files."""

import dagster as dg

from dagster_project.event_files import list_event_files
from dagster_project.jobs import apex_all
from dagster_project.resources import ApexDataResource

__all__ = ["new_event_files_sensor"]


@dg.sensor(
    job=apex_all,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs apex_all when event files appear or change (cursor: newest mtime + file count).",
)
def new_event_files_sensor(
    context: dg.SensorEvaluationContext, apex_data: ApexDataResource
) -> dg.SensorResult | dg.SkipReason:
    files = list_event_files(apex_data.events_path)
    if not files:
        return dg.SkipReason(f"no event files under {apex_data.events_dir}")
    # newest mtime catches new and rewritten files; the count catches files arriving with an older mtime
    newest_mtime_ns = max(p.stat().st_mtime_ns for p in files)
    cursor = f"{newest_mtime_ns}:{len(files)}"
    if cursor == context.cursor:
        return dg.SkipReason("no new event files since the last run request")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=cursor)], cursor=cursor)
