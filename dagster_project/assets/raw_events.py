"""The raw gateway events: Parquet files the gateway writes, observed by the pipeline, one partition per UTC day.

A run of day ``D`` (or of the days of a backfill range, in one run) looks only at the files under
``date=D/``: files that break event contract v1 are moved to ``_quarantine/`` first
(dagster_project/quarantine.py), so one bad file never stops dbt from reading the rest of the batch, and the
files of other days are not touched.
"""

import dagster as dg

from contracts.event_files import day_folder, list_event_files, summarize_event_files
from contracts.events import EVENT_SCHEMA
from dagster_project.partitions import EVENT_DAYS, run_days
from dagster_project.quarantine import quarantine_bad_files
from dagster_project.resources import ApexDataResource

__all__ = ["raw_gateway_events"]


@dg.asset(
    key="raw_gateway_events",
    group_name="gateway",
    description=(
        "Gateway events (contract v1, contracts/events.py): the Parquet files under date=<day>/hour=HH/, "
        "one partition per UTC day."
    ),
    kinds={"parquet"},
    partitions_def=EVENT_DAYS,
    # a backfill of a range of days is one run (like the dbt marts downstream): each day's files are scanned
    # once, and dbt re-processes from the range's first day once
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def raw_gateway_events(context: dg.AssetExecutionContext, apex_data: ApexDataResource) -> dg.MaterializeResult:
    days = run_days(context)
    events_dir = apex_data.events_path
    quarantined = quarantine_bad_files(events_dir, list_event_files(events_dir, days), EVENT_SCHEMA)
    for bad in quarantined:
        context.log.warning(f"quarantined {bad.source} -> {bad.moved_to}: {bad.reason}")
    summary = summarize_event_files(list_event_files(events_dir, days))
    if days is None:
        where = str(events_dir)
    elif len(days) == 1:
        where = str(day_folder(events_dir, days[0]))
    else:
        where = f"{events_dir}/date={days[0]}..{days[-1]}"
    context.log.info(f"{summary.files} event files, {summary.rows} rows under {where}")
    metadata: dict[str, dg.RawMetadataValue] = {
        "path": dg.MetadataValue.path(where),
        # a backfill range reports its totals on each of its days
        "days": dg.MetadataValue.json(days if days is not None else "all"),
        "file_count": summary.files,
        "row_count": dg.MetadataValue.int(summary.rows),
        "bytes": summary.bytes,
        "quarantined_count": len(quarantined),
        "quarantined": dg.MetadataValue.json([{"file": str(q.source), "reason": q.reason} for q in quarantined]),
    }
    if summary.newest_event is not None:
        metadata["newest_event"] = dg.MetadataValue.timestamp(summary.newest_event)
    return dg.MaterializeResult(metadata=metadata)
