"""The real Streamlit page (AppTest) on small real DuckDB warehouses, chosen via APEX_DATA__WAREHOUSE."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboards.app import MATERIALIZE_HINT, SIMULATED_BANNER


@pytest.fixture
def run_app(app_path: Path, monkeypatch: pytest.MonkeyPatch):
    def run(warehouse: Path) -> AppTest:
        monkeypatch.setenv("APEX_DATA__WAREHOUSE", str(warehouse))
        at = AppTest.from_file(str(app_path), default_timeout=30).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_page_with_data(run_app, sample_warehouse: Path) -> None:
    at = run_app(sample_warehouse)
    # conftest SAMPLE_ROWS: spend 5.50, savings 2.00, 5 requests, 1 error; fee = 20% of savings.
    assert metrics(at) == {
        "Total AI spend": "$5.50",
        "Apex savings": "$2.00",
        "Spend without Apex": "$7.50",
        "Savings rate": "26.7%",
        "ROI": "400.0%",
        "Requests": "5",
        "Error rate": "20.0%",
    }
    assert chart_titles(at) == [
        "Spend vs savings per day",
        "Spend by model",
        "Spend by provider",
        "Spend by user (top 10)",
    ]
    assert len(at.dataframe) == 3
    assert not at.info and not at.warning and not at.error
    assert at.selectbox[0].options == ["All customers", "acme", "globex"]
    assert at.date_input[0].value == (dt.date(2025, 3, 1), dt.date(2025, 3, 5))


def test_filters_narrow_the_page(run_app, sample_warehouse: Path) -> None:
    at = run_app(sample_warehouse)
    at.selectbox[0].select("globex").run()
    assert not at.exception
    assert metrics(at)["Total AI spend"] == "$3.00"
    assert metrics(at)["ROI"] == "n/a"  # globex saved nothing: no fee to divide by
    at.date_input[0].set_value((dt.date(2025, 3, 3), dt.date(2025, 3, 3))).run()
    assert not at.exception
    assert metrics(at)["Requests"] == "2"
    assert chart_titles(at)[0] == "Spend vs savings per hour"  # ranges of two days or less go hourly


def test_filters_with_no_matching_requests(run_app, sample_warehouse: Path) -> None:
    at = run_app(sample_warehouse)
    at.selectbox[0].select("globex").run()
    at.date_input[0].set_value((dt.date(2025, 3, 5), dt.date(2025, 3, 5))).run()
    assert not at.exception
    assert "No requests" in at.info[0].value
    assert not at.metric and not at.get("plotly_chart")


@pytest.mark.parametrize("with_agg", [pytest.param(True, id="empty-tables"), pytest.param(False, id="table-missing")])
def test_empty_warehouse_says_what_to_do(run_app, make_warehouse, with_agg: bool) -> None:
    at = run_app(make_warehouse([], with_agg=with_agg))
    assert at.info[0].value == f"No spend data yet. {MATERIALIZE_HINT}"
    assert not at.metric and not at.get("plotly_chart") and not at.error


def test_missing_warehouse_names_the_path(run_app, tmp_path: Path) -> None:
    path = tmp_path / "data" / "warehouse.duckdb"
    at = run_app(path)
    assert len(at.error) == 1
    assert f"No warehouse file at `{path}`" in at.error[0].value
    assert "Materialize all" in at.error[0].value and "make demo" in at.error[0].value
    assert not path.exists()


def test_simulated_traffic_banner(run_app, make_warehouse, row) -> None:
    at = run_app(make_warehouse([row(1, "2025-03-01 10:00", cost=0.5, is_simulated=True)]))
    assert [i.value for i in at.info] == [SIMULATED_BANNER]
    assert metrics(at)["Total AI spend"] == "$0.5000"


def test_unknown_price_warning(run_app, make_warehouse, row) -> None:
    at = run_app(
        make_warehouse(
            [
                row(1, "2025-03-01 10:00", model="gpt-4o", cost=2.0, savings=0.5),
                row(2, "2025-03-01 11:00", model="mystery-model", cost=None, savings=None),
            ]
        )
    )
    assert len(at.warning) == 1
    warning = at.warning[0].value
    assert "1 request(s) have cost unknown — not counted as $0" in warning
    assert "mystery-model (1)" in warning
    assert metrics(at)["Total AI spend"] == "$2.00"
    assert metrics(at)["Requests"] == "2"
    assert not at.info  # real (non-simulated) traffic: no simulated banner


def test_busy_warehouse_is_a_message_not_a_crash(run_app, sample_warehouse: Path, write_lock) -> None:
    with write_lock(sample_warehouse):
        at = run_app(sample_warehouse)
    assert [w.value for w in at.warning] == ["The warehouse is busy — a dbt build is writing it. Refreshing shortly."]
    assert not at.error and not at.metric
