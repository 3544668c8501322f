"""Jobs: ``apex_all`` refreshes everything, from the raw-event scan through the dbt marts."""

from __future__ import annotations

import dagster as dg

__all__ = ["apex_all", "apex_optimizers"]

apex_all = dg.define_asset_job(
    name="apex_all",
    # billing exports are monthly partitions with their own job (dagster_project/billing/assets.py); the routing
    # policy retrains on its own (daily) schedule: an hourly spend refresh must not pay for a training run
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("billing") - dg.AssetSelection.groups("optimizers"),
    description="Scan the raw events, check them, then dbt build the spend marts (tests as asset checks).",
)

apex_optimizers = dg.define_asset_job(
    name="apex_optimizers",
    selection=dg.AssetSelection.groups("optimizers"),
    description="Rebuild the routing feedback table and retrain the routing policy the gateway hot-reloads.",
)
