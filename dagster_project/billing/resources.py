"""The billing side's Dagster resource: where the warehouse, events, ledger and export files live."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from contracts.settings import SharedSettings
from dagster_project.billing.settings import BillingPaths

__all__ = ["BillingResource"]


class BillingResource(dg.ConfigurableResource):
    warehouse_path: str
    events_dir: str
    validation_runs_dir: str
    ledger_path: str
    exports_dir: str
    instance_prices_path: str

    @classmethod
    def from_settings(cls, settings: SharedSettings) -> BillingResource:
        p = BillingPaths.from_settings(settings)
        return cls(
            warehouse_path=str(p.warehouse),
            events_dir=str(p.events_dir),
            validation_runs_dir=str(p.validation_runs_dir),
            ledger_path=str(p.ledger),
            exports_dir=str(p.exports_dir),
            instance_prices_path=str(p.instance_prices),
        )

    def paths(self) -> BillingPaths:
        return BillingPaths(
            warehouse=Path(self.warehouse_path),
            events_dir=Path(self.events_dir),
            validation_runs_dir=Path(self.validation_runs_dir),
            ledger=Path(self.ledger_path),
            exports_dir=Path(self.exports_dir),
            instance_prices=Path(self.instance_prices_path),
        )
