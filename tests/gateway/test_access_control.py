"""Keys and teams limited to models and endpoints (403 in the caller's wire format, before any cost), keys that
expire (401), and the key database from before these columns, upgraded in place."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator

import anthropic
import openai
import pytest
from typer.testing import CliRunner

from contracts.console import app
from gateway.errors import PermissionDeniedError
from gateway.keys import ApiKey, KeyStore, hash_key
from gateway.keys.access import check_model

MSG = [{"role": "user", "content": "hi"}]


_open: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def _openai(gw, key: str) -> openai.OpenAI:
    _open.append(openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0))
    return _open[-1]  # type: ignore[return-value]


def _anthropic(gw, key: str) -> anthropic.Anthropic:
    _open.append(anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0))
    return _open[-1]  # type: ignore[return-value]


def _refusals(gw, key: str, model: str) -> dict[str, tuple[int, dict]]:
    """Call each endpoint for ``model``; the status and error body each refused with."""
    out = {}
    with pytest.raises(openai.PermissionDeniedError) as chat:
        _openai(gw, key).chat.completions.create(model=model, messages=MSG, max_tokens=5)
    out["chat"] = (chat.value.status_code, chat.value.response.json())
    with pytest.raises(openai.PermissionDeniedError) as embed:
        _openai(gw, key).embeddings.create(model=model, input="hello")
    out["embeddings"] = (embed.value.status_code, embed.value.response.json())
    with pytest.raises(anthropic.PermissionDeniedError) as msgs:
        _anthropic(gw, key).messages.create(model=model, messages=MSG, max_tokens=5)  # type: ignore[arg-type]
    out["messages"] = (msgs.value.status_code, msgs.value.response.json())
    return out


def test_a_model_outside_the_keys_list_is_refused_in_each_wire_format_before_any_cost(gw):
    key, plain = gw.keys.create("narrow", customer_id="c", budget_usd=0.01, models=["fake-echo"])
    _openai(gw, plain).chat.completions.create(model="fake-echo", messages=MSG, max_tokens=5)  # allowed

    refused = _refusals(gw, plain, "gpt-4o-mini")
    assert {name: status for name, (status, _) in refused.items()} == {
        "chat": 403,
        "embeddings": 403,
        "messages": 403,
    }
    for name in ("chat", "embeddings"):
        error = refused[name][1]["error"]
        assert (error["type"], error["code"], error["param"]) == ("permission_error", "model_not_allowed", "model")
    assert refused["messages"][1]["type"] == "error"  # Anthropic's shape
    assert refused["messages"][1]["error"]["type"] == "permission_error"

    events = gw.events()
    denied = events.filter(events["http_status"] == 403)
    assert denied.height == 3 and set(denied["endpoint"]) == {
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/messages",
    }
    assert denied["cost_usd"].fill_null(0).sum() == 0
    assert set(denied["error_type"]) == {"model_not_allowed"}
    # nothing was reserved or spent for the refusals: the key's spend is the one allowed call's
    allowed_cost = events.filter(events["http_status"] == 200)["cost_usd"].sum()
    gw.keys.flush()
    assert gw.keys.get(key.key_id).spent_usd == pytest.approx(allowed_cost)


def test_the_endpoint_list_refuses_other_endpoints(gw):
    _, plain = gw.keys.create("chat-only", customer_id="c", endpoints=["chat", "/v1/embeddings"])
    _openai(gw, plain).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    _openai(gw, plain).embeddings.create(model="gpt-4o-mini", input="hello")
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        _anthropic(gw, plain).messages.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)  # type: ignore[arg-type]
    assert info.value.response.json()["error"]["type"] == "permission_error"
    assert "may not call /v1/messages" in info.value.response.json()["error"]["message"]


def test_a_teams_model_list_applies_to_its_keys(gw):
    gw.keys.set_team("team-x", budget_usd=None, models=["fake-echo"])
    _, plain = gw.keys.create("member", customer_id="c", team_id="team-x")
    _openai(gw, plain).chat.completions.create(model="fake-echo", messages=MSG, max_tokens=5)
    with pytest.raises(openai.PermissionDeniedError) as info:
        _openai(gw, plain).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert info.value.body["code"] == "model_not_allowed"  # type: ignore[index]


def _cli(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


def test_cli_models_and_expiry_reach_the_gateway(gw, tmp_path):
    config = str(tmp_path / "apex0.yaml")  # the gateway's own config (make_gateway)
    created = _cli(
        "keys", "create", "--name", "ephemeral", "--models", "fake-echo,gpt-4o-mini", "--expires-in", "1.5",
        "--config", config,
    )  # fmt: skip
    plain = created.strip().splitlines()[-1]
    (listed,) = [
        json.loads(line)
        for line in _cli("keys", "list", "--json", "--config", config).splitlines()
        if json.loads(line)["name"] == "ephemeral"
    ]
    assert listed["models"] == ["fake-echo", "gpt-4o-mini"] and listed["spent_usd"] == 0
    assert listed["expires_at"] == pytest.approx(time.time() + 1.5, abs=5) and listed["endpoints"] is None
    _openai(gw, plain).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    with pytest.raises(openai.PermissionDeniedError):
        _openai(gw, plain).chat.completions.create(model="sim-unpriced", messages=MSG, max_tokens=5)
    time.sleep(1.6)
    with pytest.raises(openai.AuthenticationError) as info:
        _openai(gw, plain).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert info.value.body["code"] == "key_expired"  # type: ignore[index]
    # an update lifts the limits again
    _cli("keys", "update", listed["key_id"], "--clear", "expires_at", "--clear", "models", "--config", config)
    _openai(gw, plain).chat.completions.create(model="sim-unpriced", messages=MSG, max_tokens=5)


def test_expiry_is_checked_on_every_call_even_with_the_key_cached(make_gateway):
    gw = make_gateway(key_cache_seconds=60)
    _, plain = gw.keys.create("short-lived", expires_at=time.time() + 1.0)
    _openai(gw, plain).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)  # now cached
    time.sleep(1.1)
    with pytest.raises(openai.AuthenticationError) as info:
        _openai(gw, plain).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert info.value.body["code"] == "key_expired"  # type: ignore[index]


# The schema as released before access control (HEAD's gateway/keys/schema.py, every column it had)
_OLD_SCHEMA = """
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, key_hint TEXT NOT NULL,
    customer_id TEXT NOT NULL, team_id TEXT,
    budget_usd REAL CHECK (budget_usd IS NULL OR budget_usd >= 0), spent_usd REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, revoked_at TEXT,
    budget_period TEXT NOT NULL DEFAULT 'total', rpm INTEGER, tpm INTEGER,
    cache_enabled INTEGER NOT NULL DEFAULT 0,
    semantic_cache TEXT CHECK (semantic_cache IS NULL OR semantic_cache IN ('off', 'on', 'shadow')),
    compression INTEGER, auto_route INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE retired_key_hashes (
    key_hash TEXT PRIMARY KEY, key_id TEXT NOT NULL REFERENCES api_keys (key_id), expires_at REAL NOT NULL
);
CREATE TABLE teams (
    team_id TEXT PRIMARY KEY, budget_usd REAL CHECK (budget_usd IS NULL OR budget_usd >= 0),
    period TEXT NOT NULL DEFAULT 'total', created_at TEXT NOT NULL
);
"""


def test_a_key_database_from_before_access_control_is_upgraded_in_place(tmp_path):
    path = tmp_path / "gateway.db"
    plain = "sk-apex-old-key-0123456789abcdef"
    with sqlite3.connect(path) as db:
        db.executescript(_OLD_SCHEMA)
        db.execute(
            "INSERT INTO api_keys (key_id, name, key_hash, key_hint, customer_id, team_id, budget_usd, spent_usd,"
            " created_at) VALUES ('key_old', 'legacy', ?, 'sk-a…cdef', 'acme', 't1', 5.0, 1.25, '2026-01-01')",
            (hash_key(plain),),
        )
        db.execute("INSERT INTO teams VALUES ('t1', 10.0, 'monthly', '2026-01-01')")

    store = KeyStore(path, cache_seconds=0)
    key = store.verify(plain)
    assert key is not None and (key.name, key.spent_usd, key.budget_usd) == ("legacy", 1.25, 5.0)
    assert (key.models, key.endpoints, key.expires_at) == (None, None, None)
    assert store.team("t1") == store.get_team("t1")
    assert store.get_team("t1").models is None  # type: ignore[union-attr]
    updated = store.update("key_old", models=["gpt-4o-mini"], endpoints=["messages"])
    assert updated is not None and updated.models == {"gpt-4o-mini"} and updated.endpoints == {"messages"}
    store.set_team("t1", budget_usd=10.0, period="monthly", models=["a", "b"])
    assert store.get_team("t1").models == {"a", "b"}  # type: ignore[union-attr]
    KeyStore(path)  # opening again migrates nothing twice
    columns = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(api_keys)")}
    assert {"models", "endpoints", "expires_at"} <= columns


@pytest.mark.parametrize(
    ("models", "endpoints"),
    [([], None), (None, ["completions"]), ([1], None), (None, [])],
    ids=["no-models", "unknown-endpoint", "non-string-model", "no-endpoints"],
)
def test_bad_lists_are_refused(tmp_path, models, endpoints):
    with pytest.raises(ValueError):
        KeyStore(tmp_path / "k.db").create("k", models=models, endpoints=endpoints)


@pytest.mark.parametrize(
    ("allowed", "ok"),
    [({"apex/auto"}, True), ({"strong", "weak"}, True), ({"strong"}, False), ({"weak"}, False)],
    ids=["alias-named", "both-models", "strong-only", "weak-only"],
)
def test_the_auto_routing_alias_needs_both_models_it_may_serve(allowed, ok):
    record = ApiKey("k", "n", "h", "c", None, None, 0.0, "t", None, models=frozenset(allowed))
    if ok:
        check_model(record, None, "apex/auto", ("strong", "weak"))
    else:
        with pytest.raises(PermissionDeniedError):
            check_model(record, None, "apex/auto", ("strong", "weak"))
