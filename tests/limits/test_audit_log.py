"""Every admin action on keys and teams — over the admin API and through ``apex keys`` — leaves one audit row:
who (the master key's fingerprint or the OS user, never a secret), what (action, target, old → new), when."""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path

import httpx
import polars as pl
import pytest
from typer.testing import CliRunner

from contracts.audit import AUDIT_SCHEMA
from contracts.console import app

MASTER = "mk-audit-0123456789"
FINGERPRINT = "admin:" + hashlib.sha256(MASTER.encode()).hexdigest()[:8]


def _audit_rows(data_dir: Path) -> pl.DataFrame:
    files = sorted((data_dir / "audit").glob("date=*/*.parquet"))
    assert (data_dir / "audit" / "_schema_v1.parquet").exists()
    return pl.concat([pl.read_parquet(f) for f in files]).sort("occurred_at")


def _admin(gw, method: str, path: str, **kw) -> httpx.Response:
    r = httpx.request(method, gw.url + path, headers={"authorization": f"Bearer {MASTER}"}, timeout=10, **kw)
    return r


def test_admin_api_actions_are_audited_with_the_master_keys_fingerprint(start_gateway, monkeypatch, tmp_path):
    monkeypatch.setenv("APEX_MASTER_KEY", MASTER)
    gw = start_gateway()
    r = _admin(gw, "POST", "/admin/keys", json={"name": "svc", "models": ["gpt-4o-mini"], "expires_in": 3600})
    assert r.status_code == 201, r.text
    created = r.json()
    key_id, plain = created["key_id"], created["key"]
    assert created["models"] == ["gpt-4o-mini"] and created["expires_at"] > 0
    r = _admin(gw, "PATCH", f"/admin/keys/{key_id}", json={"budget_usd": 3, "endpoints": ["chat"], "models": None})
    assert r.status_code == 200 and r.json()["endpoints"] == ["chat"] and r.json()["models"] is None
    assert _admin(gw, "PATCH", f"/admin/keys/{key_id}", json={"budget_usd": 3}).status_code == 200  # no change
    rotated = _admin(gw, "POST", f"/admin/keys/{key_id}/rotate", json={"grace_seconds": 0}).json()
    assert _admin(gw, "POST", f"/admin/keys/{key_id}/revoke").status_code == 200
    r = _admin(gw, "PUT", "/admin/teams/t1", json={"budget_usd": 2, "period": "monthly", "models": ["gpt-4o-mini"]})
    assert r.status_code == 200 and r.json()["models"] == ["gpt-4o-mini"]

    rows = _audit_rows(tmp_path / "data")
    assert rows.schema == pl.from_arrow(AUDIT_SCHEMA.empty_table()).schema  # type: ignore[union-attr]
    assert rows["action"].to_list() == ["key.created", "key.updated", "key.rotated", "key.revoked", "team.updated"]
    assert set(rows["actor"]) == {FINGERPRINT}
    assert rows["target_id"].to_list() == [key_id] * 4 + ["t1"]
    changes = [json.loads(c) for c in rows["changes"]]
    assert changes[0]["name"] == [None, "svc"] and changes[0]["models"] == [None, ["gpt-4o-mini"]]
    assert changes[1] == {"budget_usd": [None, 3], "endpoints": [None, ["chat"]], "models": [["gpt-4o-mini"], None]}
    assert changes[3]["revoked_at"][1] is not None
    assert changes[4]["budget_usd"] == [None, 2] and changes[4]["models"] == [None, ["gpt-4o-mini"]]
    dump = rows.write_csv()
    for secret in (MASTER, plain, rotated["key"], created["key_hint"], hashlib.sha256(plain.encode()).hexdigest()):
        assert secret not in dump


def test_cli_actions_are_audited_as_the_os_user(tmp_path):
    runner = CliRunner()

    def cli(*args: str) -> str:
        res = runner.invoke(app, ["keys", *args])
        assert res.exit_code == 0, res.output
        return res.stdout

    plain = cli("create", "--name", "bot", "--models", "a,b", "--expires-in", "60").strip().splitlines()[-1]
    (listed,) = [json.loads(line) for line in cli("list", "--json").splitlines()]
    key_id = listed["key_id"]
    cli("update", key_id, "--rpm", "10", "--endpoints", "embeddings")
    new_plain = cli("rotate", key_id, "--grace-seconds", "0").strip().splitlines()[-1]
    cli("revoke", key_id)
    cli("team", "t9", "--budget-usd", "4", "--models", "a")

    rows = _audit_rows(tmp_path / "data")
    assert rows["action"].to_list() == ["key.created", "key.updated", "key.rotated", "key.revoked", "team.updated"]
    assert set(rows["actor"]) == {f"cli:{getpass.getuser()}"}
    updated = json.loads(rows["changes"][1])
    assert updated == {"rpm": [None, 10], "endpoints": [None, ["embeddings"]]}
    dump = rows.write_csv()
    assert plain not in dump and new_plain not in dump and listed["key_hint"] not in dump


@pytest.mark.parametrize(
    ("method", "path", "body", "param"),  # param None: any (the edge schema or the key store may refuse first)
    [
        ("POST", "/admin/keys", {"name": "x", "rpm": 9223372036854775808}, None),
        ("POST", "/admin/keys", {"name": "x", "budget_usd": 10**30}, None),
        ("PUT", "/admin/teams/t", {"budget_usd": 10**400}, None),
        ("POST", "/admin/keys", {"name": "x", "models": []}, None),
        ("POST", "/admin/keys", {"name": "x", "models": "gpt-4o-mini"}, "models"),
        ("POST", "/admin/keys", {"name": "x", "endpoints": ["completions"]}, None),
        ("POST", "/admin/keys", {"name": "x", "expires_in": -5}, "expires_in"),
        ("POST", "/admin/keys", {"name": "x", "expires_in": 10**400}, None),
        ("POST", "/admin/keys", {"name": "x", "expires_at": 1, "expires_in": 5}, "expires_in"),
    ],
    ids=[
        "rpm-beyond-int64",
        "huge-budget",
        "team-huge-int",
        "empty-models",
        "models-not-a-list",
        "unknown-endpoint",
        "negative-expiry",
        "huge-expiry",
        "both-expiries",
    ],
)
def test_bad_admin_values_are_400_in_json(start_gateway, monkeypatch, tmp_path, method, path, body, param):
    monkeypatch.setenv("APEX_MASTER_KEY", MASTER)
    gw = start_gateway()
    r = _admin(gw, method, path, json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["type"] == "invalid_request_error"
    if param is not None:
        assert r.json()["error"]["param"] == param
    assert not list((tmp_path / "data" / "audit").glob("date=*/*.parquet"))  # nothing applied, nothing audited
