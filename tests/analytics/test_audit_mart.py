"""The admin audit log reaches the marts: actions taken with ``apex keys`` → ``dbt build`` → ``fct_admin_audit``."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from contracts.console import app
from contracts.settings import Settings
from dagster_project.resources import ApexDataResource
from tests.dbt_runner import run_dbt

pytestmark = pytest.mark.slow


def test_cli_actions_land_in_fct_admin_audit(apex_settings: Settings, tmp_path: Path) -> None:
    runner = CliRunner()

    def cli(*args: str) -> str:
        res = runner.invoke(app, ["keys", *args])
        assert res.exit_code == 0, res.output
        return res.stdout

    plain = cli("create", "--name", "bot", "--models", "gpt-4o-mini").strip().splitlines()[-1]
    key_id = json.loads(cli("list", "--json").splitlines()[0])["key_id"]
    cli("update", key_id, "--budget-usd", "5", "--expires-in", "3600")
    cli("revoke", key_id)

    resource = ApexDataResource.from_settings(apex_settings)
    run_dbt(resource.dbt_env(), tmp_path, "build", "--select", "+fct_admin_audit")
    with duckdb.connect(resource.warehouse_path, read_only=True) as db:
        rows = db.execute(
            "select action, target_id, actor_kind, changed_fields, changes from fct_admin_audit order by occurred_at"
        ).fetchall()
    assert [r[0] for r in rows] == ["key.created", "key.updated", "key.revoked"]
    assert {r[1] for r in rows} == {key_id} and {r[2] for r in rows} == {"cli"}
    assert rows[1][3] == "budget_usd,expires_at"
    assert all(plain not in r[4] for r in rows)
