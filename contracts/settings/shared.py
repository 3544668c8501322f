"""Sections every process reads: where the data lives, the local ports, and the sandbox's metering."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from contracts.settings._base import Frozen

__all__ = ["DataSettings", "PortSettings", "SandboxSettings"]


class DataSettings(Frozen):
    dir: Path = Path("data")
    events_dir: Path | None = None
    gateway_db: Path | None = None
    warehouse: Path | None = None

    @property
    def events_path(self) -> Path:
        return self.events_dir or self.dir / "events"

    @property
    def gateway_db_path(self) -> Path:
        return self.gateway_db or self.dir / "gateway.db"

    @property
    def warehouse_path(self) -> Path:
        return self.warehouse or self.dir / "warehouse.duckdb"

    @property
    def policies_path(self) -> Path:
        return self.dir / "policies"


class SandboxSettings(Frozen):
    instance_type: str = "c7i.large"
    """Instance type validation runs on this machine are metered as (BVM); must be in the price seed."""


class PortSettings(Frozen):
    dagster: int = Field(default=3000, ge=1, le=65535)
    dashboard: int = Field(default=8501, ge=1, le=65535)
