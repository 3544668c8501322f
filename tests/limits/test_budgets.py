"""Budgets are reserved atomically before dispatch and settled after: concurrency cannot overspend them."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import openai
import pytest

from gateway.keys import KeyStore
from gateway.limits.periods import current_window

MSG = [{"role": "user", "content": "Tell me a story about budgets."}]


async def _burst(base_url: str, key: str, n: int, **extra: object) -> list[object]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)
    try:
        calls = [client.chat.completions.create(model="gpt-4o-mini", messages=MSG, **extra) for _ in range(n)]
        return await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await client.close()


def _split(results: list[object]) -> tuple[list[object], list[openai.RateLimitError]]:
    ok = [r for r in results if not isinstance(r, BaseException)]
    limited = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(ok) + len(limited) == len(results), [r for r in results if isinstance(r, BaseException)][:3]
    return ok, limited


def test_200_concurrent_calls_never_overspend_a_nearly_spent_budget(start_gateway):
    gw = start_gateway()
    budget = 0.001
    key, plain = gw.state.keys.create("race", budget_usd=budget)
    store = gw.state.limiter.store
    # spend most of it first, one call at a time
    client = openai.OpenAI(base_url=gw.base_url, api_key=plain, max_retries=0)
    while store.spent("key", key.key_id, "total") < budget * 0.8:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=100)
    before = store.spent("key", key.key_id, "total")

    ok, limited = _split(asyncio.run(_burst(gw.base_url, plain, 200, max_tokens=100)))

    spent = store.spent("key", key.key_id, "total")
    assert spent <= budget + 1e-12, f"overspent: {spent} > {budget}"
    assert len(limited) >= 150 and ok, (len(ok), len(limited))
    assert {e.body["code"] for e in limited} == {"insufficient_quota"}
    assert all("retry-after" not in e.response.headers for e in limited)  # a total budget never resets
    # what was settled is exactly what the admitted calls cost
    got = sum(0.15e-6 * r.usage.prompt_tokens + 0.6e-6 * r.usage.completion_tokens for r in ok)
    assert spent - before == pytest.approx(got, rel=1e-6)


def test_a_team_budget_is_shared_by_its_keys(start_gateway):
    gw = start_gateway()
    keys = gw.state.keys
    keys.set_team("team-x", budget_usd=0.0005, period="daily")
    (k1, p1), (k2, p2) = keys.create("a", team_id="team-x"), keys.create("b", team_id="team-x")

    async def both() -> list[object]:
        a, b = await asyncio.gather(*(_burst(gw.base_url, p, 40, max_tokens=100) for p in (p1, p2)))
        return a + b

    ok, limited = _split(asyncio.run(both()))
    window, _ = current_window("daily", time.time())
    store = gw.state.limiter.store
    team_spent = store.spent("team", "team-x", window)
    assert team_spent <= 0.0005 + 1e-12
    assert team_spent == pytest.approx(
        store.spent("key", k1.key_id, "total") + store.spent("key", k2.key_id, "total"), rel=1e-9
    )
    assert ok and limited and {e.body["code"] for e in limited} == {"budget_exceeded"}
    assert "team 'team-x'" in limited[0].body["message"]
    # a daily budget tells the client when it resets
    retry = int(limited[0].response.headers["retry-after"])
    assert 0 < retry <= 86400


def test_an_unpriced_model_is_reserved_at_the_fallback_price_not_free(start_gateway):
    gw = start_gateway(unknown_model_price_per_token=0.001)
    _, plain = gw.state.keys.create("unpriced", budget_usd=0.05)
    client = openai.OpenAI(base_url=gw.base_url, api_key=plain, max_retries=0)
    # ~15 prompt + 100 completion tokens at $0.001 > $0.05: refused although the table has no price
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="sim-unpriced", messages=MSG, max_tokens=100)
    assert info.value.body["code"] == "insufficient_quota"
    client.chat.completions.create(model="sim-unpriced", messages=MSG, max_tokens=20)  # fits


def test_a_missing_max_tokens_reserves_the_configured_default(start_gateway):
    gw = start_gateway(default_max_tokens=1000)
    _, plain = gw.state.keys.create("default-cap", budget_usd=0.0005)  # < 1000 tokens x $0.6/M
    client = openai.OpenAI(base_url=gw.base_url, api_key=plain, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=200)


def test_the_sqlite_store_keeps_spend_across_a_restart(start_gateway, tmp_path):
    data = tmp_path / "persist"
    gw = start_gateway(data)
    key, plain = gw.state.keys.create("persist", budget_usd=0.0003, budget_period="monthly")
    client = openai.OpenAI(base_url=gw.base_url, api_key=plain, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        for _ in range(100):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=50)
    window, _ = current_window("monthly", time.time())
    spent = gw.state.limiter.store.spent("key", key.key_id, window)
    assert spent > 0.0002
    gw.stop()

    again = start_gateway(data)
    assert again.state.limiter.store.spent("key", key.key_id, window) == pytest.approx(spent, rel=1e-9)
    client = openai.OpenAI(base_url=again.base_url, api_key=plain, max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=50)
    assert info.value.body["code"] == "budget_exceeded"


def test_a_database_from_the_previous_version_opens_and_keeps_its_keys(tmp_path):
    db_path = tmp_path / "old.db"
    old = sqlite3.connect(db_path)
    old.executescript(
        """
        CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, key_hint TEXT NOT NULL,
            customer_id TEXT NOT NULL, team_id TEXT,
            budget_usd REAL CHECK (budget_usd IS NULL OR budget_usd >= 0), spent_usd REAL NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL, revoked_at TEXT);
        """
    )
    old.close()
    KeyStore(db_path).add_existing("sk-legacy-0123456789", "legacy")  # a pre-migration row...
    old = sqlite3.connect(db_path)
    old.execute("UPDATE api_keys SET spent_usd = 1.5, budget_usd = 10")
    old.commit()
    old.close()

    store = KeyStore(db_path)
    key = store.verify("sk-legacy-0123456789")
    assert key is not None and (key.spent_usd, key.budget_usd, key.budget_period) == (1.5, 10, "total")
    assert (key.rpm, key.tpm, key.cache_enabled) == (None, None, False)
    assert store.update(key.key_id, rpm=5, cache_enabled=True).rpm == 5
