"""Virtual keys through the CLI and the API: hashed at rest, revocable, budgets enforced."""

from __future__ import annotations

import json
import sqlite3

import openai
import pytest
from typer.testing import CliRunner

from contracts.console import app


def test_cli_creates_lists_and_revokes_keys(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["keys", "create", "--name", "billing-bot", "--customer", "acme", "--budget-usd", "12.5"])
    assert res.exit_code == 0, res.output
    plain = res.stdout.strip().splitlines()[-1]
    assert plain.startswith("sk-apex-") and len(plain) > 40

    db = tmp_path / "data" / "gateway.db"
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert plain not in dump  # only the hash is stored
    assert "billing-bot" in dump

    res = runner.invoke(app, ["keys", "list", "--json"])
    assert res.exit_code == 0, res.output
    (listed,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert (listed["name"], listed["customer_id"], listed["budget_usd"]) == ("billing-bot", "acme", 12.5)
    assert plain not in res.stdout
    key_id = listed["key_id"]
    table = runner.invoke(app, ["keys", "list"], env={"COLUMNS": "200"})
    assert "billing-bot" in table.stdout and key_id in table.stdout and plain not in table.stdout
    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 1


def test_revoked_key_is_rejected(gw):
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    client.models.list()
    key_id = gw.keys.list()[0].key_id
    gw.keys.revoke(key_id)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_budget_is_enforced_with_429(gw):
    key, plain = gw.keys.create("tiny", customer_id="c", budget_usd=0.0002)
    client = openai.OpenAI(base_url=gw.base_url, api_key=plain, max_retries=0)
    msg = [{"role": "user", "content": "Tell me a long story about budgets."}]
    # admission reserves the worst case (prompt + max_tokens), so the cap must fit the budget for a call to pass
    with pytest.raises(openai.RateLimitError) as info:
        for _ in range(50):
            client.chat.completions.create(model="gpt-4o-mini", messages=msg, max_tokens=60)
    assert info.value.body["code"] == "insufficient_quota"
    events = gw.events()
    ok = events.filter(events["http_status"] == 200)
    assert ok.height >= 1
    # spend stops before the budget: every admitted call's worst case fitted in what was left
    assert ok["cost_usd"].sum() <= 0.0002
    gw.keys.flush()
    assert gw.keys.get(key.key_id).spent_usd == pytest.approx(ok["cost_usd"].sum(), rel=1e-9)
