"""The raw gateway events: Parquet files the gateway writes, observed by the pipeline.

Files that break event contract v1 are moved to ``_quarantine/`` first (dagster_project/quarantine.py), so one
bad file never stops dbt from reading the rest of the batch.
"""

import dagster as dg

from dagster_project.event_files import list_event_files, summarize_event_files
from dagster_project.quarantine import quarantine_bad_files
from dagster_project.resources import ApexDataResource
from gateway.events.schema import EVENT_SCHEMA

__all__ = ["raw_gateway_events"]


@dg.asset(
    key="raw_gateway_events",
    group_name="gateway",
    description="Gateway events (contract v1, gateway/events/schema.py), date=/hour= partitioned Parquet.",
    kinds={"parquet"},
)
def raw_gateway_events(context: dg.AssetExecutionContext, apex_data: ApexDataResource) -> dg.MaterializeResult:
    quarantined = quarantine_bad_files(apex_data.events_path, list_event_files(apex_data.events_path), EVENT_SCHEMA)
    for bad in quarantined:
        context.log.warning(f"quarantined {bad.source} -> {bad.moved_to}: {bad.reason}")
    summary = summarize_event_files(list_event_files(apex_data.events_path))
    context.log.info(f"{summary.files} event files, {summary.rows} rows under {apex_data.events_dir}")
    metadata: dict[str, dg.RawMetadataValue] = {
        "path": dg.MetadataValue.path(apex_data.events_dir),
        "file_count": summary.files,
        "row_count": dg.MetadataValue.int(summary.rows),
        "bytes": summary.bytes,
        "quarantined_count": len(quarantined),
        "quarantined": dg.MetadataValue.json([{"file": str(q.source), "reason": q.reason} for q in quarantined]),
    }
    if summary.newest_event is not None:
        metadata["newest_event"] = dg.MetadataValue.timestamp(summary.newest_event)
    return dg.MaterializeResult(metadata=metadata)
