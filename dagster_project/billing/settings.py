"""Billing settings: paths from the Apex settings, and the Stripe key — the one place it is read."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contracts.settings import SharedSettings

__all__ = ["BillingPaths", "StripeSettings"]


@dataclass(frozen=True)
class BillingPaths:
    warehouse: Path
    events_dir: Path
    validation_runs_dir: Path
    ledger: Path
    exports_dir: Path
    instance_prices: Path

    @classmethod
    def from_settings(cls, settings: SharedSettings) -> BillingPaths:
        data = settings.data.dir.expanduser().resolve()
        return cls(
            warehouse=settings.data.warehouse_path.expanduser().resolve(),
            events_dir=settings.data.events_path.expanduser().resolve(),
            validation_runs_dir=data / "validation_runs",
            ledger=data / "billing.db",
            exports_dir=data / "exports",
            instance_prices=Path(__file__).resolve().parents[2] / "dbt" / "seeds" / "cloud_instance_prices.csv",
        )


@dataclass(frozen=True)
class StripeSettings:
    """``STRIPE_API_KEY`` (unset = dry run) and ``STRIPE_API_BASE`` (e.g. a local fake; default api.stripe.com).

    Stripe's own variable names, not ``APEX_*``: they are the names Stripe's docs and tooling use for them."""

    api_key: str | None
    api_base: str | None = None
    max_network_retries: int = 2

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StripeSettings:
        env = os.environ if environ is None else environ
        return cls(api_key=env.get("STRIPE_API_KEY") or None, api_base=env.get("STRIPE_API_BASE") or None)

    @property
    def dry_run(self) -> bool:
        return self.api_key is None
