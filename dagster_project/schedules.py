"""An hourly refresh of everything, backstop for the new-files sensor (stopped until enabled in the UI)."""

from __future__ import annotations

import dagster as dg

from dagster_project.jobs import apex_all, apex_optimizers

__all__ = ["apex_all_hourly", "apex_optimizers_daily"]

apex_all_hourly = dg.ScheduleDefinition(
    name="apex_all_hourly",
    job=apex_all,
    cron_schedule="10 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

apex_optimizers_daily = dg.ScheduleDefinition(
    name="apex_optimizers_daily",
    job=apex_optimizers,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
