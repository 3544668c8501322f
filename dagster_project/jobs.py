"""Jobs: ``apex_all`` refreshes one UTC day (or a range of days), from the raw-event scan through the dbt marts."""

from __future__ import annotations

import dagster as dg

__all__ = ["apex_all", "apex_optimizers"]

apex_all = dg.define_asset_job(
    name="apex_all",
    # billing exports are monthly partitions with their own job (dagster_project/billing/assets.py); the routing
    # policy retrains on its own (daily) schedule: an hourly spend refresh must not pay for a training run
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("billing") - dg.AssetSelection.groups("optimizers"),
    # the raw events, their check and the dbt marts are partitioned by UTC day; raw_validation_runs is not (it is
    # scanned whole on every run). A run takes one day (partition_key) or a range of days (the
    # dagster/asset_partition_range_start/_end tags: one run, as the assets' single-run backfill policy does).
    # Dagster infers the job's partitions (EVENT_DAYS) from the selected assets.
    description=(
        "For a UTC day (or a range of days): scan and quarantine that day's raw event files, check them, then "
        "dbt build the spend marts from that day on (tests as asset checks)."
    ),
)

apex_optimizers = dg.define_asset_job(
    name="apex_optimizers",
    selection=dg.AssetSelection.groups("optimizers"),
    description="Rebuild the routing feedback table and retrain the routing policy the gateway hot-reloads.",
)
