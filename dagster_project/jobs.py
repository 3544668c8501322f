"""Jobs: ``apex_all`` refreshes everything, from the raw-event scan through the dbt marts."""

from __future__ import annotations

import dagster as dg

__all__ = ["apex_all"]

apex_all = dg.define_asset_job(
    name="apex_all",
    selection=dg.AssetSelection.all(),
    description="Scan the raw events, check them, then dbt build the spend marts (tests as asset checks).",
)
