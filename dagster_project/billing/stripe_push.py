"""Push one period's invoices to Stripe with the official SDK, resumably and without double-billing.

Per invoice whose plan is ``push``: create a draft (``collection_method=send_invoice``, ``days_until_due``,
``auto_advance=false``, metadata ``apex_invoice_id``/``apex_period``), add one invoice item per billable line with
a non-zero amount (integer cents, ``invoice=<draft>``, metadata ``line_id``/``proof_hash``), finalize. Every step
carries a deterministic idempotency key (``apex-inv-<id>-create``, ``apex-line-<line id>``,
``apex-inv-<id>-finalize``) and is committed to the ledger as soon as Stripe answers, so a re-run (or a run after a
crash) skips what is done and replays at most the one step in flight — which Stripe's idempotency answers with
the object it already made.

Never pushed, always reported (and a non-zero exit code): invoices without a Stripe customer, invoices with a
line blocked by an unknown price (with the line's reason), invoices whose Stripe calls failed. Without
``STRIPE_API_KEY`` this is a dry run: the plan is returned and nothing is written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import stripe

from dagster_project.billing.checks import require_checks_passed
from dagster_project.billing.ledger import Ledger, PushStep
from dagster_project.billing.marts import rows_for_period
from dagster_project.billing.settings import StripeSettings

__all__ = ["InvoiceOutcome", "PlannedInvoice", "PlannedItem", "PushReport", "build_plan", "push_period"]

Action = Literal["push", "no_stripe_mapping", "blocked", "nothing_to_bill"]


@dataclass(frozen=True)
class PlannedItem:
    line_id: str
    description: str
    amount_cents: int
    currency: str
    proof_hash: str


@dataclass(frozen=True)
class PlannedInvoice:
    invoice_id: str
    customer_id: str
    stripe_customer_id: str | None
    period: str
    currency: str
    days_until_due: int
    total_cents: int
    items: tuple[PlannedItem, ...]
    action: Action
    reasons: tuple[str, ...] = ()


@dataclass
class InvoiceOutcome:
    invoice_id: str
    customer_id: str
    action: Action
    result: str = "planned"
    """``pushed`` | ``already_pushed`` | ``failed`` | ``not_pushed`` | ``planned`` (dry run)."""
    stripe_invoice_id: str | None = None
    items_created: int = 0
    items_already_done: int = 0
    error: str | None = None
    reasons: tuple[str, ...] = ()


@dataclass
class PushReport:
    period: str
    dry_run: bool
    plan: list[PlannedInvoice]
    outcomes: list[InvoiceOutcome] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every invoice with something to bill is (or, dry, would be) in Stripe; 1 otherwise."""
        bad = {"no_stripe_mapping", "blocked"}
        if any(p.action in bad for p in self.plan):
            return 1
        return 1 if any(o.result == "failed" for o in self.outcomes) else 0


def build_plan(warehouse: Path, period: str) -> list[PlannedInvoice]:
    rows = rows_for_period(warehouse, period)
    lines_by_invoice: dict[str, list[dict[str, Any]]] = {}
    for line in rows["invoice_lines"]:
        lines_by_invoice.setdefault(line["invoice_id"], []).append(line)
    return [_plan_invoice(inv, lines_by_invoice.get(inv["invoice_id"], [])) for inv in rows["invoices"]]


def _plan_invoice(inv: dict[str, Any], lines: list[dict[str, Any]]) -> PlannedInvoice:
    items = tuple(
        PlannedItem(ln["line_id"], ln["description"], int(ln["amount_cents"]), ln["currency"], ln["proof_hash"])
        for ln in lines
        if ln["status"] == "billable" and int(ln["amount_cents"]) > 0
    )
    blocked = [
        f"line {ln['line_id']} ({ln['lever'] or ln['line_type']}): {ln['status']}"
        + (f" — {ln['status_reason']}" if ln["status_reason"] else "")
        for ln in lines
        if ln["status"] == "blocked_unknown_price"
    ]
    action: Action
    reasons: list[str] = []
    if blocked or inv["status"] == "blocked":
        action, reasons = "blocked", blocked or [f"invoice status is {inv['status']!r}"]
    elif not inv["stripe_customer_id"] or inv["status"] == "no_stripe_mapping":
        action = "no_stripe_mapping"
        reasons = [f"customer {inv['customer_id']} has no Stripe customer id (seed customer_contracts)"]
    elif not items:
        action, reasons = "nothing_to_bill", ["no billable line with a non-zero amount"]
    elif inv["status"] != "ready":
        action, reasons = "blocked", [f"invoice status is {inv['status']!r}, not 'ready'"]
    else:
        action = "push"
    return PlannedInvoice(
        invoice_id=inv["invoice_id"],
        customer_id=inv["customer_id"],
        stripe_customer_id=inv["stripe_customer_id"],
        period=inv["billing_period"],
        currency=inv["currency"],
        days_until_due=int(inv["days_until_due"]),
        total_cents=int(inv["total_cents"]),
        items=items,
        action=action,
        reasons=tuple(reasons),
    )


def push_period(
    warehouse: Path, ledger_path: Path, period: str, stripe_settings: StripeSettings | None = None
) -> PushReport:
    """Check, plan and (with an API key) push ``period``; see the module docstring."""
    settings = stripe_settings or StripeSettings.from_env()
    plan = build_plan(warehouse, period)
    require_checks_passed(warehouse, ledger_path, record=not settings.dry_run)
    report = PushReport(period, settings.dry_run, plan)
    if settings.dry_run:
        report.outcomes = [
            InvoiceOutcome(p.invoice_id, p.customer_id, p.action, "planned", reasons=p.reasons) for p in plan
        ]
        return report
    assert settings.api_key is not None
    client = stripe.StripeClient(
        settings.api_key,
        base_addresses={"api": settings.api_base} if settings.api_base else None,
        max_network_retries=settings.max_network_retries,
    )
    with Ledger(ledger_path) as ledger:
        for planned in plan:
            if planned.action != "push":
                report.outcomes.append(
                    InvoiceOutcome(
                        planned.invoice_id, planned.customer_id, planned.action, "not_pushed", reasons=planned.reasons
                    )
                )
                continue
            report.outcomes.append(_push_invoice(client, ledger, planned))
    return report


def _push_invoice(client: stripe.StripeClient, ledger: Ledger, planned: PlannedInvoice) -> InvoiceOutcome:
    outcome = InvoiceOutcome(planned.invoice_id, planned.customer_id, planned.action)
    done = ledger.steps(planned.invoice_id)
    if ("finalized", "") in done:
        outcome.result = "already_pushed"
        outcome.stripe_invoice_id = done[("finalized", "")].stripe_id
        outcome.items_already_done = sum(1 for step, _ in done if step == "item_added")
        return outcome
    try:
        created = done.get(("invoice_created", ""))
        if created is None:
            key = f"apex-inv-{planned.invoice_id}-create"
            invoice = client.v1.invoices.create(
                params={
                    "customer": planned.stripe_customer_id or "",
                    "collection_method": "send_invoice",
                    "days_until_due": planned.days_until_due,
                    "auto_advance": False,
                    "currency": planned.currency,
                    "pending_invoice_items_behavior": "exclude",
                    "description": f"Apex — {planned.period}",
                    "metadata": {"apex_invoice_id": planned.invoice_id, "apex_period": planned.period},
                },
                options={"idempotency_key": key},
            )
            created = PushStep(planned.invoice_id, "invoice_created", "", invoice.id, key, planned.total_cents)
            ledger.record_step(created)
        outcome.stripe_invoice_id = created.stripe_id
        for item in planned.items:
            previous = done.get(("item_added", item.line_id))
            if previous is not None:
                if previous.amount_cents != item.amount_cents:
                    raise _LineChanged(
                        f"line {item.line_id} was pushed as {previous.amount_cents} cents and is now "
                        f"{item.amount_cents}; the Stripe draft {created.stripe_id} needs a manual fix"
                    )
                outcome.items_already_done += 1
                continue
            key = f"apex-line-{item.line_id}"
            added = client.v1.invoice_items.create(
                params={
                    "customer": planned.stripe_customer_id or "",
                    "invoice": created.stripe_id,
                    "amount": item.amount_cents,
                    "currency": item.currency,
                    "description": item.description,
                    "metadata": {
                        "line_id": item.line_id,
                        "proof_hash": item.proof_hash,
                        "apex_invoice_id": planned.invoice_id,
                    },
                },
                options={"idempotency_key": key},
            )
            ledger.record_step(
                PushStep(planned.invoice_id, "item_added", item.line_id, added.id, key, item.amount_cents)
            )
            outcome.items_created += 1
        key = f"apex-inv-{planned.invoice_id}-finalize"
        final = client.v1.invoices.finalize_invoice(
            created.stripe_id, params={"auto_advance": False}, options={"idempotency_key": key}
        )
        ledger.record_step(PushStep(planned.invoice_id, "finalized", "", final.id, key, planned.total_cents))
        outcome.result = "pushed"
    except (stripe.StripeError, _LineChanged) as exc:
        outcome.result = "failed"
        outcome.error = f"{type(exc).__name__}: {getattr(exc, 'user_message', None) or exc}"
    return outcome


class _LineChanged(Exception):
    pass
