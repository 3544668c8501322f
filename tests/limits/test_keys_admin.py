"""Key administration over the admin API (master key) and the CLI: create, list, patch, rotate, revoke, teams."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from typer.testing import CliRunner

from contracts.console import app

MASTER = "mk-test-0123456789"
MSG = [{"role": "user", "content": "hi"}]


def _chat(gw, key: str) -> None:
    openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=MSG, max_tokens=5
    )


@pytest.fixture
def admin_gw(start_gateway, monkeypatch):
    monkeypatch.setenv("APEX_MASTER_KEY", MASTER)
    return start_gateway()


def _admin(gw, method: str, path: str, token: str = MASTER, **kw) -> httpx.Response:
    return httpx.request(method, gw.url + path, headers={"authorization": f"Bearer {token}"}, timeout=10, **kw)


def test_admin_api_is_disabled_without_a_master_key(start_gateway):
    gw = start_gateway()
    r = _admin(gw, "GET", "/admin/keys", token="anything")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "admin_disabled"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/admin/keys"), ("POST", "/admin/keys"), ("POST", "/admin/keys/key_x/rotate"), ("PATCH", "/admin/keys/x")],
    ids=["list", "create", "rotate", "patch"],
)
def test_admin_api_rejects_a_wrong_master_key(admin_gw, method, path):
    r = _admin(admin_gw, method, path, token="wrong", json={})
    assert r.status_code == 401
    assert r.json()["error"] == {
        "message": "The admin API needs the master key.",
        "type": "authentication_error",
        "param": None,
        "code": "invalid_master_key",
    }


def test_admin_crud(admin_gw):
    gw = admin_gw
    r = _admin(gw, "POST", "/admin/keys", json={"name": "svc", "customer_id": "acme", "team_id": "t1", "rpm": 50})
    assert r.status_code == 201, r.text
    created = r.json()
    plain, key_id = created["key"], created["key_id"]
    assert plain.startswith("sk-apex-") and created["rpm"] == 50 and created["cache_enabled"] is False
    _chat(gw, plain)

    listed = _admin(gw, "GET", "/admin/keys").json()["data"]
    assert [k["key_id"] for k in listed] == [key_id] and "key" not in listed[0]
    assert plain not in str(listed)

    r = _admin(gw, "PATCH", f"/admin/keys/{key_id}", json={"budget_usd": 5, "budget_period": "weekly", "cache": True})
    assert r.status_code == 200, r.text
    assert (r.json()["budget_usd"], r.json()["budget_period"], r.json()["cache_enabled"]) == (5, "weekly", True)
    assert gw.state.keys.verify(plain).cache_enabled is True
    r = _admin(gw, "PATCH", f"/admin/keys/{key_id}", json={"rpm": None})
    assert r.json()["rpm"] is None and r.json()["budget_usd"] == 5

    assert _admin(gw, "PUT", "/admin/teams/t1", json={"budget_usd": 2, "period": "monthly"}).status_code == 200
    assert _admin(gw, "GET", "/admin/teams").json()["data"] == [
        {"team_id": "t1", "budget_usd": 2, "period": "monthly", "models": None, "endpoints": None}
    ]

    r = _admin(gw, "POST", f"/admin/keys/{key_id}/revoke")
    assert r.status_code == 200 and r.json()["active"] is False
    with pytest.raises(openai.AuthenticationError):
        _chat(gw, plain)
    assert _admin(gw, "POST", f"/admin/keys/{key_id}/revoke").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "param"),
    [
        ("POST", "/admin/keys", {}, 400, "name"),
        ("POST", "/admin/keys", {"name": "x", "budget_period": "hourly"}, 400, None),
        ("POST", "/admin/keys", {"name": "x", "rpm": 0}, 400, "rpm"),
        ("POST", "/admin/keys", {"name": "x", "rpm": "10"}, 400, "rpm"),
        ("POST", "/admin/keys", {"name": "x", "colour": "red"}, 400, "colour"),
        ("PATCH", "/admin/keys/key_nope", {"rpm": 3}, 404, "key_id"),
        ("POST", "/admin/keys/key_nope/rotate", {}, 404, "key_id"),
        ("PUT", "/admin/teams/t", {"budget_usd": -1}, 400, "budget_usd"),
    ],
    ids=["no-name", "bad-period", "zero-rpm", "string-rpm", "unknown-field", "patch-404", "rotate-404", "neg-team"],
)
def test_admin_errors_use_the_openai_shape(admin_gw, method, path, body, status, param):
    r = _admin(admin_gw, method, path, json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["param"] == param


def test_rotation_keeps_the_old_key_for_the_grace_period(admin_gw):
    gw = admin_gw
    old = _admin(gw, "POST", "/admin/keys", json={"name": "rot"}).json()
    r = _admin(gw, "POST", f"/admin/keys/{old['key_id']}/rotate", json={"grace_seconds": 1})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["key_id"] == old["key_id"] and new["key"] != old["key"]
    assert new["previous_key_expires_at"] == pytest.approx(time.time() + 1, abs=1)
    _chat(gw, old["key"])  # in grace
    _chat(gw, new["key"])
    time.sleep(1.1)
    with pytest.raises(openai.AuthenticationError):
        _chat(gw, old["key"])
    _chat(gw, new["key"])
    # revoking ends every secret of the key, in grace or not
    r = _admin(gw, "POST", f"/admin/keys/{new['key_id']}/rotate")  # default grace: 24 h
    newer = r.json()
    _chat(gw, new["key"])
    _admin(gw, "POST", f"/admin/keys/{new['key_id']}/revoke")
    for k in (new["key"], newer["key"]):
        with pytest.raises(openai.AuthenticationError):
            _chat(gw, k)


def test_cli_rotate_update_and_team(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["keys", "create", "--name", "cli", "--rpm", "7", "--cache", "--budget-period", "daily"])
    assert res.exit_code == 0, res.output
    old = res.stdout.strip().splitlines()[-1]
    res = runner.invoke(app, ["keys", "list", "--json"])
    key_id = res.stdout.split('"key_id": "')[1].split('"')[0]
    assert '"rpm": 7' in res.stdout and '"cache_enabled": true' in res.stdout

    res = runner.invoke(app, ["keys", "rotate", key_id, "--grace-seconds", "0"])
    assert res.exit_code == 0, res.output
    new = res.stdout.strip().splitlines()[-1]
    from contracts.settings import load_settings
    from gateway.keys import KeyStore

    store = KeyStore(load_settings().data.gateway_db_path, cache_seconds=0)
    assert store.verify(old) is None and store.verify(new).key_id == key_id

    assert runner.invoke(app, ["keys", "update", key_id, "--tpm", "900", "--clear", "rpm"]).exit_code == 0
    key = store.get(key_id)
    assert (key.rpm, key.tpm) == (None, 900)
    assert runner.invoke(app, ["keys", "update", key_id, "--budget-period", "hourly"]).exit_code == 2
    assert runner.invoke(app, ["keys", "rotate", "key_missing"]).exit_code == 1
    assert runner.invoke(app, ["keys", "team", "t9", "--budget-usd", "3", "--period", "weekly"]).exit_code == 0
    assert store.team("t9").budget_usd == 3
