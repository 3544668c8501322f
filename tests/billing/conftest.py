"""Billing fixtures: a demo-like world (events, runs, marts) per test and one fake Stripe server per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dagster_project.billing.settings import StripeSettings
from sandbox.fake_stripe import FakeStripe
from tests.billing.world import STRIPE_CUSTOMERS, World, make_world


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


@pytest.fixture(scope="session")
def _fake_stripe_server() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_stripe(_fake_stripe_server: FakeStripe) -> FakeStripe:
    _fake_stripe_server.reset()
    for stripe_id in STRIPE_CUSTOMERS.values():
        if stripe_id:
            _fake_stripe_server.add_customer(stripe_id)
    return _fake_stripe_server


@pytest.fixture
def stripe_settings(fake_stripe: FakeStripe) -> StripeSettings:
    # no SDK retries: a simulated 500 must surface as the crash it stands for
    return StripeSettings(api_key="sk_test_fake", api_base=fake_stripe.base_url, max_network_retries=0)


@pytest.fixture(autouse=True)
def _no_stripe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    monkeypatch.delenv("STRIPE_API_BASE", raising=False)
