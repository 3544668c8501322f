"""Fixtures for the billing-mart tests: a data dir (APEX_DATA__DIR) with synthetic events that carry savings
by lever, a customer whose routing nets negative, validation runs (one on an unpriced instance type), and a
helper that runs the real ``dbt build`` on it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts.settings import load_settings
from contracts.validation_runs import (
    ValidationRun,
    runs_dir_for,
    synthetic_validation_runs,
    write_validation_runs,
)
from dagster_project.resources import ApexDataResource
from sandbox.synthetic_events import write_synthetic_events
from tests.dbt_runner import run_dbt as run_dbt_with_env

N_EVENTS = 20_000
# spans a month boundary, so invoices cover two billing periods
START = datetime(2026, 1, 31, 20, tzinfo=UTC)
HOURS = 8
CUSTOMERS = ("cust_acme", "cust_globex", "cust_initech")
ESCALATING = ("cust_initech",)
UNPRICED_RUN = "run-on-unpriced-instance"


@dataclass(frozen=True)
class BillingData:
    data_dir: Path
    events_dir: Path
    runs_dir: Path
    warehouse: Path
    resource: ApexDataResource


def write_billing_data(data_dir: Path, n_events: int = N_EVENTS, seed: int = 11) -> BillingData:
    events_dir = data_dir / "events"
    runs_dir = runs_dir_for(data_dir)
    write_synthetic_events(events_dir, n_events, seed=seed, start=START, hours=HOURS, escalate_customers=ESCALATING)
    runs = synthetic_validation_runs(CUSTOMERS, START, hours=HOURS, seed=seed)
    began = START + timedelta(hours=5)
    runs.append(
        ValidationRun(
            UNPRICED_RUN,
            "cust_globex",
            began,
            began + timedelta(minutes=7),
            8,
            0,
            "z9.mega",
            "terraform:plan-0f",
            "passed",
        )
    )
    write_validation_runs(runs_dir, runs)
    resource = ApexDataResource(
        events_dir=str(events_dir),
        warehouse_path=str(data_dir / "warehouse.duckdb"),
        validation_runs_dir=str(runs_dir),
    )
    return BillingData(data_dir, events_dir, runs_dir, data_dir / "warehouse.duckdb", resource)


def run_dbt(data: BillingData, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_dbt_with_env(data.resource.dbt_env(), tmp, *args)


@pytest.fixture
def billing_data() -> BillingData:
    """Synthetic billing data in this test's APEX_DATA__DIR (set by the root conftest)."""
    return write_billing_data(load_settings().data.dir.resolve())
