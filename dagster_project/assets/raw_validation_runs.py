"""The raw validation runs (BVM metering): Parquet files sandbox/validation_runs.py writes.

Like the raw events, files breaking their contract are quarantined before dbt reads the glob.
"""

import dagster as dg
import pyarrow.parquet as pq

from contracts.validation_runs import VALIDATION_RUN_SCHEMA, ensure_schema_file
from dagster_project.quarantine import quarantine_bad_files
from dagster_project.resources import ApexDataResource

__all__ = ["raw_validation_runs"]


@dg.asset(
    key="raw_validation_runs",
    group_name="sandbox",
    description="Validation runs (schema v1, sandbox/validation_runs.py), date= partitioned Parquet.",
    kinds={"parquet"},
)
def raw_validation_runs(context: dg.AssetExecutionContext, apex_data: ApexDataResource) -> dg.MaterializeResult:
    runs_dir = apex_data.validation_runs_path
    ensure_schema_file(runs_dir)
    files = sorted(runs_dir.glob("**/*.parquet"))
    quarantined = quarantine_bad_files(runs_dir, files, VALIDATION_RUN_SCHEMA)
    for bad in quarantined:
        context.log.warning(f"quarantined {bad.source} -> {bad.moved_to}: {bad.reason}")
    files = sorted(runs_dir.glob("**/*.parquet"))
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(runs_dir)),
            "file_count": len(files),
            "row_count": dg.MetadataValue.int(sum(pq.read_metadata(p).num_rows for p in files)),
            "quarantined_count": len(quarantined),
        }
    )
