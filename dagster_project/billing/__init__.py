"""Billing: invoice export files, line proofs from the raw events, and the idempotent Stripe push.

Reads the dbt billing marts (``invoices``, ``invoice_lines``, ``invoice_line_events``); never imported by the
gateway (the ``apex`` CLI imports it lazily inside its billing commands).
"""

from dagster_project.billing.errors import BillingChecksFailed, BillingError, MartsMissing, NoInvoicesForPeriod
from dagster_project.billing.export import EXPORT_FORMATS, ExportResult, export_period
from dagster_project.billing.proof import LineProof, proof_hash, prove_lines
from dagster_project.billing.settings import BillingPaths, StripeSettings
from dagster_project.billing.stripe_push import PushReport, build_plan, push_period

__all__ = [
    "EXPORT_FORMATS",
    "BillingChecksFailed",
    "BillingError",
    "BillingPaths",
    "ExportResult",
    "LineProof",
    "MartsMissing",
    "NoInvoicesForPeriod",
    "PushReport",
    "StripeSettings",
    "build_plan",
    "export_period",
    "proof_hash",
    "prove_lines",
    "push_period",
]
