"""The raw admin audit log: Parquet files the gateway's admin API and ``apex keys`` write (contracts/audit.py).

Like the raw events, files breaking their contract are quarantined before dbt reads the glob.
"""

import dagster as dg
import pyarrow.parquet as pq

from contracts.audit import AUDIT_SCHEMA, ensure_schema_file
from dagster_project.quarantine import quarantine_bad_files
from dagster_project.resources import ApexDataResource

__all__ = ["raw_gateway_audit_log"]


@dg.asset(
    key="raw_gateway_audit_log",
    group_name="gateway",
    description="Admin actions on keys and teams (audit schema v1, contracts/audit.py), date= partitioned Parquet.",
    kinds={"parquet"},
)
def raw_gateway_audit_log(context: dg.AssetExecutionContext, apex_data: ApexDataResource) -> dg.MaterializeResult:
    audit_dir = apex_data.audit_path
    ensure_schema_file(audit_dir)
    files = sorted(audit_dir.glob("**/*.parquet"))
    quarantined = quarantine_bad_files(audit_dir, files, AUDIT_SCHEMA)
    for bad in quarantined:
        context.log.warning(f"quarantined {bad.source} -> {bad.moved_to}: {bad.reason}")
    files = sorted(audit_dir.glob("**/*.parquet"))
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(audit_dir)),
            "file_count": len(files),
            "row_count": dg.MetadataValue.int(sum(pq.read_metadata(p).num_rows for p in files)),
            "quarantined_count": len(quarantined),
        }
    )
