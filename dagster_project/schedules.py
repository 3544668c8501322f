"""An hourly refresh of the day that just got a complete hour (backstop for the new-files sensor, stopped until
enabled in the UI), and the daily optimizer retraining."""

from __future__ import annotations

from datetime import UTC, timedelta

import dagster as dg

from dagster_project.jobs import apex_all, apex_optimizers
from dagster_project.partitions import is_event_day

__all__ = ["apex_all_hourly", "apex_optimizers_daily", "hourly_partition_key"]


def hourly_partition_key(context: dg.ScheduleEvaluationContext) -> str:
    """The UTC day of the hour that closed before this tick: at 14:10 today, at 00:10 yesterday (its last hour)."""
    return (context.scheduled_execution_time.astimezone(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d")


@dg.schedule(
    name="apex_all_hourly",
    job=apex_all,
    cron_schedule="10 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every hour at :10, run apex_all for the UTC day of the hour that just closed.",
)
def apex_all_hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    day = hourly_partition_key(context)
    if not is_event_day(day):
        return dg.SkipReason(f"{day} is not an event-day partition")
    return dg.RunRequest(partition_key=day)


apex_optimizers_daily = dg.ScheduleDefinition(
    name="apex_optimizers_daily",
    job=apex_optimizers,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
