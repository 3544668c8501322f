"""A real ``dbt build`` on a temp DuckDB over synthetic events; the marts must match a recomputation."""

from pathlib import Path

import duckdb
import polars as pl
import pytest

from dagster_project.resources import ApexDataResource
from tests.analytics.conftest import EventsFixture
from tests.dbt_runner import run_dbt

pytestmark = pytest.mark.slow


@pytest.fixture
def warehouse(synthetic_events: EventsFixture, tmp_path: Path) -> Path:
    paths = ApexDataResource.from_settings(synthetic_events.settings)
    result = run_dbt(paths.dbt_env(), tmp_path, "build")
    assert "ERROR=0" in result.stdout and "WARN=0" in result.stdout
    return Path(paths.warehouse_path)


def _raw_events(events_dir: Path) -> pl.DataFrame:
    raw = pl.read_parquet(events_dir / "**" / "*.parquet", hive_partitioning=False)
    return raw.unique(subset="event_id", keep="first")


def _query(warehouse: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).pl()


def test_marts_match_a_recomputation_from_parquet(synthetic_events: EventsFixture, warehouse: Path) -> None:
    raw = _raw_events(synthetic_events.events_dir)
    with_replays = pl.read_parquet(synthetic_events.events_dir / "**" / "*.parquet", hive_partitioning=False)
    assert raw.height < with_replays.height

    fct = _query(
        warehouse,
        "select count(*) as requests, count(distinct event_id) as events, sum(cost_usd) as cost_usd,"
        " sum(total_tokens) as total_tokens, sum(prompt_tokens) as prompt_tokens,"
        " count(*) filter (where is_error) as errors from fct_llm_spend",
    ).row(0, named=True)
    assert fct["requests"] == fct["events"] == raw.height
    assert fct["cost_usd"] == pytest.approx(raw["cost_usd"].sum(), abs=1e-9)
    assert fct["total_tokens"] == raw["total_tokens"].sum()
    assert fct["prompt_tokens"] == raw["prompt_tokens"].sum()
    assert fct["errors"] == raw.filter(pl.col("http_status") >= 400).height

    expected = (
        raw.group_by("customer_id")
        .agg(
            requests=pl.len(),
            cost_usd=pl.col("cost_usd").sum(),
            total_tokens=pl.col("total_tokens").sum(),
            savings_usd=pl.sum_horizontal(
                pl.col("savings_cache_usd").fill_null(0),
                pl.col("savings_routing_usd").fill_null(0),
                pl.col("savings_compression_usd").fill_null(0),
            ).sum(),
            unpriced=(pl.col("price_status") == "unknown").sum(),
        )
        .sort("customer_id")
    )
    agg = _query(
        warehouse,
        "select customer_id, sum(requests) as requests, sum(cost_usd) as cost_usd,"
        " sum(total_tokens) as total_tokens, sum(savings_usd) as savings_usd,"
        " sum(unpriced_requests) as unpriced"
        " from agg_user_metrics_hourly group by 1 order by 1",
    )
    assert agg["customer_id"].to_list() == expected["customer_id"].to_list()
    assert agg["requests"].to_list() == expected["requests"].to_list()
    assert agg["total_tokens"].to_list() == expected["total_tokens"].to_list()
    assert agg["unpriced"].to_list() == expected["unpriced"].to_list()
    for got, want in zip(agg["cost_usd"], expected["cost_usd"], strict=True):
        assert got == pytest.approx(want, abs=1e-9)
    for got, want in zip(agg["savings_usd"], expected["savings_usd"], strict=True):
        assert got == pytest.approx(want, abs=1e-9)


def test_hourly_grain_and_anonymous_users(synthetic_events: EventsFixture, warehouse: Path) -> None:
    raw = _raw_events(synthetic_events.events_dir)
    agg = _query(warehouse, "select * from agg_user_metrics_hourly")
    expected_rows = raw.select(
        pl.col("ts_start").dt.truncate("1h"), "customer_id", pl.col("end_user").fill_null("(anonymous)")
    ).n_unique()
    assert agg.height == expected_rows
    anonymous = agg.filter(pl.col("end_user") == "(anonymous)")
    assert anonymous["requests"].sum() == raw["end_user"].null_count()
    assert agg["hour"].n_unique() == 6
    assert agg["cache_hit_rate"].is_between(0, 1).all()


def test_unknown_model_cost_stays_null(synthetic_events: EventsFixture, warehouse: Path) -> None:
    unknown = _query(
        warehouse,
        "select price_status, cost_usd, baseline_cost_usd from fct_llm_spend where price_status = 'unknown'",
    )
    assert unknown.height > 0
    assert unknown["cost_usd"].null_count() == unknown.height
    assert unknown["baseline_cost_usd"].null_count() == unknown.height
    priced = _query(
        warehouse,
        "select count(*) as n from fct_llm_spend where price_status = 'priced' and cost_usd is null",
    )
    assert priced["n"][0] == 0
