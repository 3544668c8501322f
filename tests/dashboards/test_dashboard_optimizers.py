"""The Optimizers tab: its queries on conftest's OPTIMIZER_ROWS / OPTIMIZER_SAVINGS, and the page (AppTest)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from dashboards import figures, queries
from dashboards.app import (
    NO_OPTIMIZER_DATA,
    OPTIMIZER_COLUMNS_MISSING,
    OPTIMIZERS_TAB,
    SAVINGS_NOT_BUILT,
    SPEND_TAB,
    VIEW_KEY,
)

MARCH_1, MARCH_2, MARCH_3, MARCH_5 = (dt.date(2025, 3, d) for d in (1, 2, 3, 5))
ALL = queries.Filters(MARCH_1, MARCH_5)


def approx_rows(rows: list[tuple]) -> list[tuple]:
    return [tuple(pytest.approx(v) if isinstance(v, float) else v for v in r) for r in rows]


# --- savings by lever ----------------------------------------------------------------------------------------


def test_savings_by_lever_splits_verification_statuses(optimizer_warehouse: Path) -> None:
    df = queries.savings_by_lever(optimizer_warehouse, ALL)
    assert df.columns == [
        "lever",
        "verified_usd",
        "unverified_usd",
        "blocked_usd",
        "requests",
        "verified_requests",
        "unverified_requests",
        "blocked_requests",
        "tokens_saved",
    ]
    assert df.rows() == approx_rows(
        [
            ("cache", 0.70, 0.20, 0.05, 4, 2, 1, 1, 600),
            ("routing", 0.85, 0.60, 0.0, 3, 2, 1, 0, 0),  # 0.90 + a negative -0.05 (routed to a dearer model)
            ("compression", 0.04, 0.0, 0.0, 2, 1, 0, 1, 500),  # the blocked claim is unpriced: counted, not summed
        ]
    )


def test_savings_by_lever_keeps_every_lever_when_filtered(optimizer_warehouse: Path) -> None:
    globex = queries.savings_by_lever(optimizer_warehouse, queries.Filters(MARCH_1, MARCH_5, "globex"))
    assert globex.select("lever", "requests", "blocked_requests", "tokens_saved").rows() == [
        ("cache", 0, 0, 0),
        ("routing", 0, 0, 0),
        ("compression", 1, 1, 100),
    ]
    march_3 = queries.savings_by_lever(optimizer_warehouse, queries.Filters(MARCH_3, MARCH_3))
    assert march_3.select("lever", "verified_usd", "unverified_usd").rows() == approx_rows(
        [("cache", 0.0, 0.0), ("routing", -0.05, 0.60), ("compression", 0.0, 0.0)]
    )


def test_other_levers_follow_the_known_ones(make_warehouse, row, lever_row) -> None:
    spend = row(1, "2025-03-01 10:00", cost=1.0, savings=0.2)
    path = make_warehouse([spend], savings=[lever_row(spend, "infrastructure", 0.2), lever_row(spend, "cache", 0.2)])
    df = queries.savings_by_lever(path, queries.Filters(MARCH_1, MARCH_1))
    assert df.select("lever", "verified_usd").rows() == approx_rows(
        [("cache", 0.2), ("routing", 0.0), ("compression", 0.0), ("infrastructure", 0.2)]
    )


def test_unbilled_reasons_group_by_kind(optimizer_warehouse: Path) -> None:
    df = queries.unbilled_reasons(optimizer_warehouse, ALL)
    assert df.rows() == approx_rows(
        [
            ("blocked", "cache", "unknown_price", 1, 0.05),
            ("blocked", "compression", "unknown_price", 1, 0.0),
            ("unverified", "cache", "estimated_usage", 1, 0.20),
            ("unverified", "routing", "not_rederivable", 1, 0.60),
        ]
    )


# --- semantic cache ------------------------------------------------------------------------------------------


def test_cache_statuses_and_shadow_would_have_saved(optimizer_warehouse: Path) -> None:
    df = queries.cache_statuses(optimizer_warehouse, ALL)
    assert df.rows() == approx_rows(
        [
            ("hit_exact", 2, 0.45, 0.45, 0),
            ("hit_semantic", 2, 0.50, 0.50, 0),
            ("shadow_hit", 3, 0.0, 0.75, 1),  # would have saved 0.50 + 0.25; the unpriced one is counted apart
            ("miss", 1, 0.0, 1.0, 0),
            ("bypass", 1, 0.0, 1.0, 0),
        ]
    )


def test_shadow_would_have_saved_is_the_baseline_not_the_cost(make_warehouse, row) -> None:
    # e.g. a shadow hit that provider prompt caching made cheaper: the cache would have saved the baseline
    path = make_warehouse([row(1, "2025-03-01 10:00", cost=0.30, cache_status="shadow_hit", baseline_cost_usd=0.50)])
    df = queries.cache_statuses(path, queries.Filters(MARCH_1, MARCH_1))
    shadow = df.filter(df["cache_status"] == "shadow_hit").row(0, named=True)
    assert (shadow["requests"], shadow["baseline_cost_usd"]) == (1, pytest.approx(0.50))


def test_cache_statuses_without_cache_traffic_are_zero(optimizer_warehouse: Path) -> None:
    df = queries.cache_statuses(optimizer_warehouse, queries.Filters(MARCH_5, MARCH_5))
    assert df["cache_status"].to_list() == list(queries.CACHE_STATUSES)
    assert df["requests"].sum() == 0


def test_cache_similarity_histogram(optimizer_warehouse: Path) -> None:
    df = queries.cache_similarity(optimizer_warehouse, ALL)
    # the miss's rejected candidate (0.70) is not a hit: left out
    assert df.rows() == approx_rows(
        [
            ("hit_semantic", 0.91, 1),
            ("hit_semantic", 0.96, 1),
            ("shadow_hit", 0.93, 1),
            ("shadow_hit", 0.95, 1),
            ("shadow_hit", 0.97, 1),
        ]
    )


def test_cache_similarity_bin_edges(make_warehouse, row) -> None:
    sims = [0.57, 0.575, 1.0, 0.99]  # 0.57 x 100 is 56.99999… in binary; 1.0 belongs to the last bin
    path = make_warehouse(
        [
            row(n, "2025-03-01 10:00", cost=0.0, savings=0.1, cache_status="hit_semantic", cache_similarity=s)
            for n, s in enumerate(sims)
        ]
    )
    df = queries.cache_similarity(path, queries.Filters(MARCH_1, MARCH_1))
    assert df.select("bin_start", "requests").rows() == approx_rows([(0.57, 2), (0.99, 2)])


# --- learned routing ------------------------------------------------------------------------------------------


def test_routing_tiers_per_policy(optimizer_warehouse: Path) -> None:
    df = queries.routing_tiers(optimizer_warehouse, ALL)
    assert df.columns == ["policy_version", "tier", "requests", "savings_usd", "verified_savings_usd"]
    # policies in the order they first decided; the dispatcher's fallback is not learned routing
    assert df.rows() == approx_rows(
        [
            ("(no policy loaded)", "strong", 1, 0.0, 0.0),
            ("p1", "weak", 1, 0.90, 0.90),
            ("p1", "strong", 1, 0.0, 0.0),
            ("p2", "weak", 1, 0.60, 0.0),  # claimed but unverified: not billed
        ]
    )


def test_routing_tiers_date_filter(optimizer_warehouse: Path) -> None:
    df = queries.routing_tiers(optimizer_warehouse, queries.Filters(MARCH_2, MARCH_3))
    assert df.select("policy_version", "tier").rows() == [("p1", "strong"), ("p2", "weak")]


# --- compression ---------------------------------------------------------------------------------------------


def test_compression_summary(optimizer_warehouse: Path) -> None:
    everyone = queries.compression_summary(optimizer_warehouse, ALL).row(0, named=True)
    assert everyone == {
        "requests": 8,
        "compressed": 2,
        "unchanged": 1,
        "fallbacks": 5,
        "tokens_saved": 500,
        "savings_usd": pytest.approx(0.04),
    }
    globex = queries.compression_summary(optimizer_warehouse, queries.Filters(MARCH_1, MARCH_5, "globex"))
    assert globex.select("requests", "compressed", "fallbacks", "tokens_saved").row(0) == (2, 1, 1, 100)


def test_compression_fallback_reasons(optimizer_warehouse: Path) -> None:
    df = queries.compression_fallbacks(optimizer_warehouse, ALL)
    # grouped by kind: the lost number / entity / question (prompt content) is not shown
    assert df.rows() == [("number lost", 2), ("error", 1), ("final question lost", 1), ("quality < 0.9", 1)]
    assert queries.compression_fallbacks(optimizer_warehouse, ALL, top_n=2).rows() == [
        ("number lost", 2),
        ("error", 1),
    ]
    acme = queries.compression_fallbacks(optimizer_warehouse, queries.Filters(MARCH_1, MARCH_5, "acme"))
    assert "error" not in acme["reason"].to_list()


# --- figures -------------------------------------------------------------------------------------------------


def test_lever_figure_stacks_statuses(optimizer_warehouse: Path) -> None:
    fig = figures.lever_savings_bar(queries.savings_by_lever(optimizer_warehouse, ALL))
    assert [t.name for t in fig.data] == ["Verified (billed)", "Unverified", "Blocked"]
    assert fig.data[0].x == ("Cache", "Routing", "Compression")
    assert fig.data[0].y == approx_rows([(0.70, 0.85, 0.04)])[0]
    assert fig.layout.barmode == "relative"  # a negative routing claim stacks below zero


def test_routing_figure_keeps_the_policy_order(optimizer_warehouse: Path) -> None:
    fig = figures.routing_tiers_bar(queries.routing_tiers(optimizer_warehouse, ALL))
    assert fig.layout.xaxis.categoryarray == ("(no policy loaded)", "p1", "p2")
    weak = next(t for t in fig.data if t.name.startswith("Weak"))
    assert (weak.x, weak.y) == (("p1", "p2"), (1, 1))


# --- the page ------------------------------------------------------------------------------------------------


@pytest.fixture
def run_optimizers(app_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The app with the Optimizers tab open."""

    def run(warehouse: Path) -> AppTest:
        monkeypatch.setenv("APEX_DATA__WAREHOUSE", str(warehouse))
        at = AppTest.from_file(str(app_path), default_timeout=30)
        at.session_state[VIEW_KEY] = OPTIMIZERS_TAB
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_optimizers_tab_renders_every_lever(run_optimizers, optimizer_warehouse: Path) -> None:
    at = run_optimizers(optimizer_warehouse)
    assert chart_titles(at) == [
        "Savings by lever",
        "Cache lookups by outcome",
        "Similarity: semantic hits vs shadow hits",
        "Learned routing: weak vs strong model per policy",
    ]  # and not the spend charts: only the open tab runs
    shown = metrics(at)
    assert {k: shown[k] for k in ("Verified (billed) savings", "Unverified savings", "Blocked savings")} == {
        "Verified (billed) savings": "$1.59",
        "Unverified savings": "$0.8000",
        "Blocked savings": "$0.0500",
    }
    assert shown["Would have saved (shadow)"] == "$0.7500"
    assert (shown["Exact hits"], shown["Semantic hits"], shown["Shadow hits"]) == ("2", "2", "3")
    assert (shown["Auto-routed calls"], shown["Sent to the weak model"]) == ("4", "2 (50.0%)")
    assert shown["Of which verified (billed)"] == "$0.9000"
    assert (shown["Calls compressed"], shown["Tokens saved"], shown["Guard fallbacks"]) == ("2", "500", "5")
    assert shown["Total AI spend"]  # the headline stays above the tabs
    assert any("Only **verified** savings are billed" in m.value for m in at.markdown)
    assert not at.info and not at.error
    fallbacks = at.dataframe[-1].value  # the last table: top fallback reasons
    assert fallbacks.values.tolist()[0] == ["number lost", 2]


def test_optimizers_tab_follows_the_customer_filter(run_optimizers, optimizer_warehouse: Path) -> None:
    at = run_optimizers(optimizer_warehouse)
    at.selectbox[0].select("globex").run()
    assert not at.exception
    # globex only compressed: the other sections say how to opt in instead of drawing empty charts
    infos = [i.value for i in at.info]
    assert len(infos) == 2
    assert "x-apex-semantic-cache: on" in infos[0] and "apex/auto" in infos[1]
    assert chart_titles(at) == ["Savings by lever"]
    assert metrics(at)["Calls compressed"] == "1"


def test_no_optimizer_data_says_how_to_opt_in(run_optimizers, optimizer_warehouse: Path) -> None:
    at = run_optimizers(optimizer_warehouse)
    at.date_input[0].set_value((MARCH_5, MARCH_5)).run()
    assert not at.exception
    assert [i.value for i in at.info] == [NO_OPTIMIZER_DATA]
    for header in ("x-apex-semantic-cache: on", "shadow", "x-apex-compress: on", "apex/auto"):
        assert header in NO_OPTIMIZER_DATA
    assert not at.get("plotly_chart")
    assert metrics(at)["Total AI spend"] == "$2.00"


def test_warehouse_without_fct_savings(run_optimizers, make_warehouse, row) -> None:
    at = run_optimizers(make_warehouse([row(1, "2025-03-01 10:00")], savings=None))
    assert at.info[0].value == SAVINGS_NOT_BUILT
    assert metrics(at)["Total AI spend"] == "$1.00"  # the rest of the page still works
    assert not at.error


def test_warehouse_from_before_the_optimizer_columns(run_optimizers, make_warehouse, row) -> None:
    path = make_warehouse([row(1, "2025-03-01 10:00")])
    con = duckdb.connect(str(path))
    con.execute("alter table main.fct_llm_spend drop column compression_status")
    con.close()
    at = run_optimizers(path)
    assert len(at.error) == 1 and at.error[0].value.startswith(OPTIMIZER_COLUMNS_MISSING)
    assert metrics(at)["Total AI spend"] == "$1.00"
    at.session_state[VIEW_KEY] = SPEND_TAB  # the tabs are still there: back to spend
    at.run()
    assert not at.error and chart_titles(at)[0] == "Spend vs savings per hour"
