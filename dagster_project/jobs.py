"""Jobs: ``apex_all`` refreshes everything, from the raw-event scan through the dbt marts."""

from __future__ import annotations

import dagster as dg

__all__ = ["apex_all"]

apex_all = dg.define_asset_job(
    name="apex_all",
    # billing exports are monthly partitions with their own job (dagster_project/billing/assets.py)
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("billing"),
    description="Scan the raw events, check them, then dbt build the spend marts (tests as asset checks).",
)
