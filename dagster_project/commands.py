"""The analytics side's ``apex`` commands: ``apex invoices export|push`` and ``apex proof``.

Registered through the ``apex.commands`` entry point; Dagster, dbt and Stripe are imported only inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from contracts.console import ConfigOpt, console, settings_or_exit
from contracts.settings import load_analytics_settings

__all__ = ["register"]

invoices_app = typer.Typer(help="Export invoices and push them to Stripe (idempotent).", no_args_is_help=True)


BillingPeriodOpt = Annotated[str, typer.Option("--period", help="Billing month, YYYY-MM.")]


def invoices_export(
    period: BillingPeriodOpt,
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or json.")] = "csv",
    out: Annotated[Path | None, typer.Option(help="Output directory (default: <data dir>/exports/<period>).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Write the period's invoices, invoice lines and proof rows from the dbt billing marts."""
    from dagster_project.billing.commands import run_export

    raise typer.Exit(run_export(settings_or_exit(load_analytics_settings, config), period, fmt, out, console))


def invoices_push(period: BillingPeriodOpt, config: ConfigOpt = None) -> None:
    """Push the period's ready invoices to Stripe; a dry run (the plan) without STRIPE_API_KEY."""
    from dagster_project.billing.commands import run_push

    raise typer.Exit(run_push(settings_or_exit(load_analytics_settings, config), period, console))


def proof(line_id: Annotated[str, typer.Argument(help="invoice_lines.line_id")], config: ConfigOpt = None) -> None:
    """Recompute an invoice line from the raw event files and say MATCH or MISMATCH (exit 0 / 1)."""
    from dagster_project.billing.commands import run_proof

    raise typer.Exit(run_proof(settings_or_exit(load_analytics_settings, config), line_id, console))


def register(app: typer.Typer) -> None:
    """Add the billing commands to the ``apex`` app."""
    invoices_app.command("export")(invoices_export)
    invoices_app.command("push")(invoices_push)
    app.add_typer(invoices_app, name="invoices")
    app.command()(proof)
