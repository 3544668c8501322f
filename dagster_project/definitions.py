"""The Apex code location: raw events → GX check → dbt spend marts; billing; the routing policy; sensors and
schedules."""

from __future__ import annotations

import dagster as dg

from contracts.settings import SharedSettings, load_analytics_settings
from dagster_project.assets.dbt_marts import apex_dbt_models, build_dbt_resource
from dagster_project.assets.optimizers import routing_feedback, routing_policy
from dagster_project.assets.raw_audit_log import raw_gateway_audit_log
from dagster_project.assets.raw_events import raw_gateway_events
from dagster_project.assets.raw_validation_runs import raw_validation_runs
from dagster_project.billing.assets import billing_invoice_export, billing_monthly_invoicing, billing_monthly_job
from dagster_project.billing.checks import billing_invoice_lines_quality, billing_invoices_quality
from dagster_project.billing.resources import BillingResource
from dagster_project.checks import raw_events_quality
from dagster_project.jobs import apex_all, apex_optimizers
from dagster_project.resources import ApexDataResource
from dagster_project.schedules import apex_all_hourly, apex_optimizers_daily
from dagster_project.sensors import new_event_files_sensor

__all__ = ["build_definitions", "defs"]


def build_definitions(settings: SharedSettings | None = None) -> dg.Definitions:
    """Definitions wired to ``settings`` (default: ``load_analytics_settings()``, i.e. apex.yaml + APEX_* variables)."""
    settings = settings or load_analytics_settings()
    return dg.Definitions(
        assets=[
            raw_gateway_events,
            raw_validation_runs,
            raw_gateway_audit_log,
            apex_dbt_models,
            billing_invoice_export,
            routing_feedback,
            routing_policy,
        ],
        asset_checks=[raw_events_quality, billing_invoice_lines_quality, billing_invoices_quality],
        jobs=[apex_all, apex_optimizers, billing_monthly_job],
        sensors=[new_event_files_sensor],
        schedules=[apex_all_hourly, apex_optimizers_daily, billing_monthly_invoicing],
        resources={
            "apex_data": ApexDataResource.from_settings(settings),
            "apex_billing": BillingResource.from_settings(settings),
            "dbt": build_dbt_resource(),
        },
    )


defs = build_definitions()
