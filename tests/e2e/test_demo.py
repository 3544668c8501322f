"""The demo's whole path, as a user runs it: gateway → workload → SIGTERM → Dagster/dbt → services → stop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import httpx
import pytest
import yaml

from contracts.settings import DEFAULT_CONFIG_TEXT
from dagster_project.billing.proof import prove_lines
from sandbox.demo import REPO_ROOT
from sandbox.services import group_alive, running
from tests.gateway.conftest import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_demo_end_to_end_leaves_no_servers_behind(tmp_path):
    cfg = yaml.safe_load(DEFAULT_CONFIG_TEXT)
    cfg["providers"][0]["latency_scale"] = 0.05
    cfg["data"] = {"dir": str(tmp_path / "data")}
    cfg["gateway"]["port"] = free_port()
    cfg["ports"] = {"dagster": free_port(), "dashboard": free_port()}
    config = tmp_path / "apex.yaml"
    config.write_text(yaml.safe_dump(cfg))
    apex = str(Path(sys.executable).with_name("apex"))
    data_dir = tmp_path / "data"

    proc = subprocess.run(
        [apex, "demo", "--config", str(config), "--requests", "120"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "Demo ready" in proc.stdout
        assert f"http://127.0.0.1:{cfg['ports']['dashboard']}" in proc.stdout

        # the marts hold every call the workload made
        con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
        requests, answered, simulated, unknown, cost = con.execute(
            "select count(*), count(*) filter (where http_status = 200), count(*) filter (where is_simulated), "
            "count(*) filter (where price_status = 'unknown'), sum(cost_usd) from fct_llm_spend"
        ).fetchone()
        hourly = con.execute("select sum(requests), sum(cost_usd) from agg_user_metrics_hourly").fetchone()
        hits, savings = con.execute(
            "select count(*), sum(savings_usd) from fct_llm_spend where cache_status = 'hit_exact'"
        ).fetchone()
        statuses = dict(con.execute("select cache_status, count(*) from fct_llm_spend group by 1").fetchall())
        levers = {
            lever: (n, verified)
            for lever, n, verified in con.execute(
                "select lever, count(*), sum(savings_usd) filter (where verification_status = 'verified') "
                "from fct_savings group by 1"
            ).fetchall()
        }
        routed = con.execute(
            "select count(*) filter (where routing_decision like 'auto: weak%'), count(distinct policy_version), "
            "count(*) filter (where baseline_model <> served_model) from fct_llm_spend "
            "where requested_model = 'apex/auto' and http_status = 200"
        ).fetchone()
        con.close()
        assert requests == 120
        assert simulated == answered > 100  # every answered call was served by the simulated provider
        assert unknown > 0  # the fine-tuned alias has no public price: flagged, not $0
        assert cost > 0 and hourly[0] == 120 and hourly[1] == pytest.approx(cost, abs=1e-9)
        assert hits > 0 and savings > 0  # repeated FAQ calls were answered by the exact cache
        # every optimizer acted in the demo and its savings reached the marts, verified
        assert statuses.get("hit_semantic", 0) > 0  # reworded FAQs answered by the semantic cache
        assert statuses.get("shadow_hit", 0) > 0  # Globex runs it in shadow mode: logged, not served
        assert set(levers) >= {"cache", "routing", "compression"}, levers
        assert all(verified and verified > 0 for _, verified in levers.values()), levers
        assert routed[0] > 0 and routed[1] == 1 and routed[2] > 0  # apex/auto sent easy prompts to the cheap model

        # every line of the demo's invoices re-derives from the raw Parquet files to the cent
        con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
        periods = [r[0] for r in con.execute("select distinct billing_period from invoices").fetchall()]
        bvm = con.execute("select count(*), sum(charge_cents) from fct_bvm_charges").fetchone()
        con.close()
        assert bvm[0] == 3 and bvm[1] >= 0  # the replay was metered once per demo customer
        proofs = [
            p
            for period in periods
            for p in prove_lines(
                data_dir / "warehouse.duckdb",
                data_dir / "events",
                period=period,
                validation_runs_dir=data_dir / "validation_runs",
                instance_prices=REPO_ROOT / "dbt" / "seeds" / "cloud_instance_prices.csv",
            )
        ]
        # (a 120-call demo saves fractions of a cent, so the VBP amounts may round to 0; the savings may not)
        assert any(p.line_type == "vbp" and (p.expected_usd or 0) > 0 for p in proofs)
        assert [p.line_id for p in proofs if not p.matches] == [], [
            p.mismatch_reasons() for p in proofs if not p.matches
        ]

        # both services answer
        assert httpx.get(f"http://127.0.0.1:{cfg['ports']['dashboard']}/_stcore/health").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{cfg['ports']['dagster']}/server_info").status_code == 200
        assert set(running(data_dir)) == {"dagster", "dashboard"}
    finally:
        groups = [int(p.read_text()) for p in (data_dir / "run").glob("*.pid")]
        stop = subprocess.run([apex, "stop", "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0
    assert running(data_dir) == []
    assert groups and not any(group_alive(g) for g in groups)  # code servers and daemons included
    for port in (cfg["ports"]["dashboard"], cfg["ports"]["dagster"], cfg["gateway"]["port"]):
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
