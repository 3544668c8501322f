"""The optimizer assets: the routing-feedback table (seed + graded calls) and the policy file the gateway reads."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest

from contracts.settings import load_settings
from dagster_project.assets.optimizers import routing_feedback, routing_policy
from dagster_project.resources import ApexDataResource
from gateway.levers.policy_file import PolicyHolder

pytestmark = pytest.mark.slow


def test_feedback_and_policy_assets_write_a_policy_the_gateway_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("APEX_DATA__DIR", str(tmp_path / "data"))
    settings = load_settings()
    feedback_dir = tmp_path / "data" / "feedback"
    feedback_dir.mkdir(parents=True)
    graded = pl.DataFrame(
        {
            "prompt": ["Our own question about invoices?"] * 2,
            "model": ["gpt-4-1106-preview", "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"],
            "score": [1.0, 0.0],
        }
    )
    graded.write_parquet(feedback_dir / "graded-2026-11.parquet")
    pl.DataFrame({"prompt": ["x"], "grade": [1]}).write_csv(feedback_dir / "broken.csv")

    result = dg.materialize(
        [routing_feedback, routing_policy], resources={"apex_data": ApexDataResource.from_settings(settings)}
    )
    assert result.success
    meta = {e.asset_key.path[0]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    table = pl.read_parquet(tmp_path / "data" / "policies" / "routing_feedback.parquet")
    assert table.height == 2 * 9450 + 2  # the RouteLLM seed (two models per prompt) plus the graded calls
    assert "Our own question about invoices?" in table["prompt"].to_list()
    assert meta["routing_feedback"]["skipped_files"].value == 1  # broken.csv lacks model and score: skipped
    policy_file = settings.routing_policy_path
    policy = json.loads(policy_file.read_text())
    assert meta["routing_policy"]["policy_version"].value == policy["policy_version"]
    targets = [p["quality_target"] for p in policy["operating_points"]]
    shares = [p["expected_strong_share"] for p in policy["operating_points"]]
    assert 0.95 in targets and shares == sorted(shares)  # a higher quality target never costs fewer strong calls
    # the copy named by version is kept next to the file the gateway watches
    assert (policy_file.parent / f"routing_policy-{policy['policy_version']}.json").is_file()

    holder = PolicyHolder(policy_file)
    assert holder.refresh() and holder.version == policy["policy_version"] and holder.error is None
    easy = holder.policy.decide("What is the capital of France?")
    assert easy.tier in ("weak", "strong") and easy.policy_version == policy["policy_version"]
