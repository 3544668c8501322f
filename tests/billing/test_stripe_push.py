"""The official SDK against the local fake Stripe API: exact requests, dry runs, crash and resume, refusals."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from contracts.console import app
from dagster_project.billing.ledger import Ledger
from dagster_project.billing.marts import rows_for_period
from dagster_project.billing.settings import StripeSettings
from dagster_project.billing.stripe_push import push_period
from sandbox.fake_stripe import FakeStripe
from tests.billing.world import PERIOD, STRIPE_CUSTOMERS, World, make_world


def _billable(world: World, customer: str) -> tuple[dict, list[dict]]:
    rows = rows_for_period(world.warehouse, PERIOD)
    invoice = next(i for i in rows["invoices"] if i["customer_id"] == customer)
    lines = [
        ln
        for ln in rows["invoice_lines"]
        if ln["invoice_id"] == invoice["invoice_id"] and ln["status"] == "billable" and ln["amount_cents"] > 0
    ]
    return invoice, lines


def test_push_sends_exactly_the_expected_requests(
    world: World, fake_stripe: FakeStripe, stripe_settings: StripeSettings
) -> None:
    report = push_period(world.warehouse, world.ledger, PERIOD, stripe_settings)
    # initech has no Stripe customer: reported, and the exit code says so
    assert report.exit_code == 1
    results = {o.customer_id: o.result for o in report.outcomes}
    assert results == {"cust_acme": "pushed", "cust_globex": "pushed", "cust_initech": "not_pushed"}

    for customer in ("cust_acme", "cust_globex"):
        invoice, lines = _billable(world, customer)
        iid = invoice["invoice_id"]
        calls = [r for r in fake_stripe.requests if r.idempotency_key and iid in r.idempotency_key] + [
            r
            for r in fake_stripe.requests
            if r.path == "/v1/invoiceitems" and r.params["metadata"]["apex_invoice_id"] == iid
        ]
        create = next(r for r in calls if r.path == "/v1/invoices")
        assert create.idempotency_key == f"apex-inv-{iid}-create"
        assert create.params == {
            "customer": STRIPE_CUSTOMERS[customer],
            "collection_method": "send_invoice",
            "days_until_due": str(invoice["days_until_due"]),
            "auto_advance": "false",
            "currency": "usd",
            "pending_invoice_items_behavior": "exclude",
            "description": f"Apex — {PERIOD}",
            "metadata": {"apex_invoice_id": iid, "apex_period": PERIOD},
        }
        stripe_invoice = next(i for i in fake_stripe.invoices.values() if i["metadata"]["apex_invoice_id"] == iid)
        items = sorted(
            (r for r in calls if r.path == "/v1/invoiceitems"), key=lambda r: r.params["metadata"]["line_id"]
        )
        assert [(r.idempotency_key, r.params) for r in items] == [
            (
                f"apex-line-{ln['line_id']}",
                {
                    "customer": STRIPE_CUSTOMERS[customer],
                    "invoice": stripe_invoice["id"],
                    "amount": str(ln["amount_cents"]),
                    "currency": "usd",
                    "description": ln["description"],
                    "metadata": {"line_id": ln["line_id"], "proof_hash": ln["proof_hash"], "apex_invoice_id": iid},
                },
            )
            for ln in sorted(lines, key=lambda ln: ln["line_id"])
        ]
        finalize = next(r for r in calls if r.path.endswith("/finalize"))
        assert finalize.path == f"/v1/invoices/{stripe_invoice['id']}/finalize"
        assert finalize.idempotency_key == f"apex-inv-{iid}-finalize"
        assert stripe_invoice["status"] == "open"
        assert fake_stripe._invoice_view(stripe_invoice["id"])["total"] == invoice["total_cents"]

    # nothing at all for the unmapped customer
    assert all("cus_" in str(r.params.get("customer", "cus_")) for r in fake_stripe.requests)
    assert len(fake_stripe.invoices) == 2


def test_a_second_push_changes_nothing(world: World, fake_stripe: FakeStripe, stripe_settings: StripeSettings) -> None:
    push_period(world.warehouse, world.ledger, PERIOD, stripe_settings)
    before = len(fake_stripe.requests)
    again = push_period(world.warehouse, world.ledger, PERIOD, stripe_settings)
    assert len(fake_stripe.requests) == before
    assert {o.result for o in again.outcomes if o.action == "push"} == {"already_pushed"}


def test_dry_run_without_api_key_changes_nothing(world: World, fake_stripe: FakeStripe) -> None:
    report = push_period(world.warehouse, world.ledger, PERIOD, StripeSettings.from_env({}))
    assert report.dry_run
    assert fake_stripe.requests == []
    assert not world.ledger.exists()
    plan = {p.customer_id: p for p in report.plan}
    assert plan["cust_acme"].action == "push" and plan["cust_initech"].action == "no_stripe_mapping"
    invoice, lines = _billable(world, "cust_acme")
    assert sum(i.amount_cents for i in plan["cust_acme"].items) == invoice["total_cents"]
    assert {i.line_id for i in plan["cust_acme"].items} == {ln["line_id"] for ln in lines}


@pytest.mark.parametrize("fail_at", [1, 3, 6], ids=["invoice-create", "second-item", "finalize-or-later"])
def test_crash_midway_then_rerun_finishes_without_duplicates(
    world: World, fake_stripe: FakeStripe, stripe_settings: StripeSettings, fail_at: int
) -> None:
    fake_stripe.fail_request(fail_at)
    first = push_period(world.warehouse, world.ledger, PERIOD, stripe_settings)
    assert any(o.result == "failed" for o in first.outcomes)
    assert first.exit_code == 1

    failed = {o.customer_id for o in first.outcomes if o.result == "failed"}

    second = push_period(world.warehouse, world.ledger, PERIOD, stripe_settings)
    results = {o.customer_id: o.result for o in second.outcomes if o.action == "push"}
    assert set(results) == {"cust_acme", "cust_globex"}
    assert all(results[c] == "pushed" for c in failed)  # resumed
    assert set(results.values()) <= {"pushed", "already_pushed"}
    # one Stripe invoice and one item per line, whatever happened in between
    assert len(fake_stripe.invoices) == 2
    line_ids = [i["metadata"]["line_id"] for i in fake_stripe.invoice_items.values()]
    assert len(line_ids) == len(set(line_ids))
    expected = {ln["line_id"] for c in ("cust_acme", "cust_globex") for ln in _billable(world, c)[1]}
    assert set(line_ids) == expected
    with Ledger(world.ledger) as ledger:
        steps = ledger.all_steps()
    assert sum(s.step == "finalized" for s in steps) == 2
    assert sum(s.step == "item_added" for s in steps) == len(expected)


def test_crash_after_stripe_answered_is_replayed_by_idempotency(
    world: World, fake_stripe: FakeStripe, stripe_settings: StripeSettings
) -> None:
    """The process dies after Stripe made the item but before the ledger row: the same key replays it."""
    push_period(world.warehouse, world.ledger, PERIOD, stripe_settings)
    with Ledger(world.ledger) as ledger:
        victim = next(s for s in ledger.all_steps() if s.step == "item_added")
        ledger.con.execute(
            "delete from stripe_push_steps where invoice_id = ? and step = 'finalized'", (victim.invoice_id,)
        )
        ledger.con.execute("delete from stripe_push_steps where line_id = ?", (victim.line_id,))
    items_before = dict(fake_stripe.invoice_items)
    # Stripe already finalized that invoice; the finalize replays from its idempotency key, too
    report = push_period(world.warehouse, world.ledger, PERIOD, stripe_settings)
    assert fake_stripe.invoice_items == items_before
    replayed = [r for r in fake_stripe.requests if r.idempotency_key == f"apex-line-{victim.line_id}"]
    assert len(replayed) == 2
    assert next(o for o in report.outcomes if o.invoice_id == victim.invoice_id).result == "pushed"


def test_blocked_line_blocks_its_invoice_with_the_reason(
    tmp_path, fake_stripe: FakeStripe, stripe_settings: StripeSettings
) -> None:
    world = make_world(tmp_path, unpriced_customer="cust_acme")
    report = push_period(world.warehouse, world.ledger, PERIOD, stripe_settings)
    acme = next(p for p in report.plan if p.customer_id == "cust_acme")
    assert acme.action == "blocked"
    assert any("blocked_unknown_price" in r and "cloud_instance_prices" in r for r in acme.reasons)
    assert report.exit_code == 1
    assert not any(i["customer"] == STRIPE_CUSTOMERS["cust_acme"] for i in fake_stripe.invoices.values())
    assert {i["customer"] for i in fake_stripe.invoices.values()} == {STRIPE_CUSTOMERS["cust_globex"]}


def test_unknown_stripe_customer_fails_that_invoice_only(
    world: World, fake_stripe: FakeStripe, stripe_settings: StripeSettings
) -> None:
    del fake_stripe.customers[STRIPE_CUSTOMERS["cust_globex"]]
    report = push_period(world.warehouse, world.ledger, PERIOD, stripe_settings)
    outcomes = {o.customer_id: o for o in report.outcomes}
    assert outcomes["cust_globex"].result == "failed" and "No such customer" in (outcomes["cust_globex"].error or "")
    assert outcomes["cust_acme"].result == "pushed"
    assert report.exit_code == 1


def test_zero_lines_are_not_pushed(world: World, fake_stripe: FakeStripe, stripe_settings: StripeSettings) -> None:
    from tests.billing.world import execute

    execute(
        world.warehouse,
        "update invoice_lines set amount_cents = 0, status = 'zero_negative_savings' "
        "where lever = 'cache'; update invoices i set total_cents = (select coalesce(sum(amount_cents), 0) "
        "from invoice_lines l where l.invoice_id = i.invoice_id and l.status = 'billable')",
    )
    push_period(world.warehouse, world.ledger, PERIOD, stripe_settings)
    pushed_lines = {i["metadata"]["line_id"] for i in fake_stripe.invoice_items.values()}
    cache_lines = {
        ln["line_id"] for ln in rows_for_period(world.warehouse, PERIOD)["invoice_lines"] if ln["lever"] == "cache"
    }
    assert pushed_lines and not pushed_lines & cache_lines


def test_cli_push_dry_run_prints_the_plan_and_reports_unmapped(world: World, fake_stripe: FakeStripe) -> None:
    result = CliRunner().invoke(app, ["invoices", "push", "--period", PERIOD])
    assert result.exit_code == 1, result.output
    assert "DRY RUN" in result.output
    assert "NOT PUSHED" in result.output and "cust_initech" in result.output and "no_stripe_mapping" in result.output
    assert fake_stripe.requests == []


def test_cli_push_with_key_pushes(world: World, fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_cli")
    monkeypatch.setenv("STRIPE_API_BASE", fake_stripe.base_url)
    result = CliRunner().invoke(app, ["invoices", "push", "--period", PERIOD])
    assert result.exit_code == 1, result.output  # initech is still unmapped
    assert len(fake_stripe.invoices) == 2 and all(i["status"] == "open" for i in fake_stripe.invoices.values())
    assert {r.params.get("customer") for r in fake_stripe.posts("/v1/invoices") if r.path == "/v1/invoices"} == {
        STRIPE_CUSTOMERS["cust_acme"],
        STRIPE_CUSTOMERS["cust_globex"],
    }
