"""What ``apex invoices export|push`` and ``apex proof`` do and print (``dagster_project/commands.py`` imports it
lazily).

Each function returns the process exit code: 0 done, 1 done but something needs a human (a MISMATCH, an
invoice not pushed), 2 refused (no invoices for the period, a blocking check failed, marts missing).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from contracts.settings import SharedSettings
from dagster_project.billing.errors import BillingError
from dagster_project.billing.export import EXPORT_FORMATS, ExportFormat, export_period
from dagster_project.billing.proof import prove_lines
from dagster_project.billing.settings import BillingPaths, StripeSettings
from dagster_project.billing.stripe_push import push_period

__all__ = ["run_export", "run_proof", "run_push"]


def _cents(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def run_export(settings: SharedSettings, period: str, fmt: str, out: Path | None, console: Console) -> int:
    paths = BillingPaths.from_settings(settings)
    if fmt not in EXPORT_FORMATS:
        console.print(f"[red]unknown format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}[/red]")
        return 2
    fmt_checked: ExportFormat = fmt  # type: ignore[assignment]
    try:
        result = export_period(paths.warehouse, paths.ledger, period, out or paths.exports_dir / period, [fmt_checked])
    except BillingError as exc:
        console.print(f"[red]export refused: {exc}[/red]")
        return 2
    for name, path in result.files.items():
        console.print(f"wrote {path} ({result.rows[name.split('.')[0]]} rows)")
    return 0


def run_push(
    settings: SharedSettings, period: str, console: Console, stripe_settings: StripeSettings | None = None
) -> int:
    paths = BillingPaths.from_settings(settings)
    stripe_settings = stripe_settings or StripeSettings.from_env()
    try:
        report = push_period(paths.warehouse, paths.ledger, period, stripe_settings)
    except BillingError as exc:
        console.print(f"[red]push refused: {exc}[/red]")
        return 2
    title = f"Stripe push {period}" + (
        " — DRY RUN (no STRIPE_API_KEY): nothing sent, nothing recorded" if report.dry_run else ""
    )
    table = Table(title=title)
    for column in ("invoice", "customer", "stripe customer", "lines", "total", "plan", "result", "detail"):
        table.add_column(column)
    outcomes = {o.invoice_id: o for o in report.outcomes}
    for p in report.plan:
        o = outcomes[p.invoice_id]
        detail = o.error or "; ".join(o.reasons) or (o.stripe_invoice_id or "")
        if not report.dry_run and o.result in ("pushed", "already_pushed"):
            detail = f"{o.stripe_invoice_id} ({o.items_created} new, {o.items_already_done} already done)"
        items = ", ".join(f"{i.line_id[:12]}={i.amount_cents}" for i in p.items)
        table.add_row(
            p.invoice_id[:16],
            p.customer_id,
            p.stripe_customer_id or "-",
            items or "-",
            _cents(sum(i.amount_cents for i in p.items)),
            p.action,
            o.result,
            detail,
        )
    console.print(table)
    for p in report.plan:
        if p.action in ("no_stripe_mapping", "blocked"):
            console.print(
                f"[yellow]NOT PUSHED {p.invoice_id} ({p.customer_id}): {p.action}: {'; '.join(p.reasons)}[/yellow]"
            )
    for o in report.outcomes:
        if o.result == "failed":
            console.print(f"[red]FAILED {o.invoice_id} ({o.customer_id}): {o.error} — re-run to resume[/red]")
    return report.exit_code


def run_proof(settings: SharedSettings, line_id: str, console: Console) -> int:
    paths = BillingPaths.from_settings(settings)

    def baseline_model(name: str) -> str:
        route = settings.route(name)
        return route.baseline_price_model if route is not None else name

    try:
        (proof,) = prove_lines(
            paths.warehouse,
            paths.events_dir,
            [line_id],
            baseline_model=baseline_model,
            validation_runs_dir=paths.validation_runs_dir,
            instance_prices=paths.instance_prices,
        )
    except BillingError as exc:
        console.print(f"[red]proof refused: {exc}[/red]")
        return 2
    print(f"line {proof.line_id} ({proof.line_type}, {proof.lever or '-'}) {proof.customer_id} {proof.billing_period}")
    print(f"  sources: {proof.sources}")
    print(f"  line amount:       {proof.expected_cents} cents  (usd basis {proof.expected_usd!r})")
    recomputed = "-" if proof.recomputed_cents is None else f"{proof.recomputed_cents} cents"
    print(f"  recomputed amount: {recomputed}  (usd basis {proof.recomputed_usd!r})")
    print(f"  proof_hash line:       {proof.expected_hash}")
    print(f"  proof_hash recomputed: {proof.recomputed_hash}")
    for note in proof.notes:
        print(f"  note: {note}")
    if proof.matches:
        print("MATCH")
        return 0
    for reason in proof.mismatch_reasons():
        print(f"  - {reason}")
    print("MISMATCH")
    return 1
