"""The dashboard's queries and headline math on a small real DuckDB warehouse (conftest's SAMPLE_ROWS)."""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path

import duckdb
import pytest

from dashboards import queries, warehouse
from dashboards.headline import Headline, format_pct, format_usd

MARCH_1, MARCH_5 = dt.date(2025, 3, 1), dt.date(2025, 3, 5)
ALL = queries.Filters(MARCH_1, MARCH_5)


def test_headline_totals(sample_warehouse: Path) -> None:
    h = Headline.from_frame(queries.headline(sample_warehouse, ALL))
    assert h == Headline(
        spend_usd=pytest.approx(5.50),
        savings_usd=pytest.approx(2.00),
        requests=5,
        error_requests=1,
        simulated_requests=0,
        unpriced_requests=0,
    )
    assert h.spend_without_apex_usd == pytest.approx(7.50)
    assert h.savings_rate == pytest.approx(2.00 / 7.50)
    assert h.apex_fee_usd == pytest.approx(0.40)
    assert h.roi == pytest.approx(4.0)  # (2.00 - 0.40) / 0.40
    assert h.error_rate == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("filters", "spend", "savings", "requests"),
    [
        pytest.param(queries.Filters(MARCH_1, MARCH_5, "acme"), 2.50, 2.00, 3, id="customer-acme"),
        pytest.param(queries.Filters(MARCH_1, MARCH_5, "globex"), 3.00, 0.0, 2, id="customer-globex"),
        pytest.param(queries.Filters(dt.date(2025, 3, 2), dt.date(2025, 3, 3)), 3.50, 0.50, 3, id="date-range"),
        pytest.param(queries.Filters(MARCH_5, MARCH_5), 0.75, 1.25, 1, id="single-day"),
        pytest.param(queries.Filters(MARCH_1, MARCH_5, "initech"), 0.0, 0.0, 0, id="unknown-customer"),
        pytest.param(queries.Filters(dt.date(2025, 4, 1), dt.date(2025, 4, 2)), 0.0, 0.0, 0, id="no-data"),
    ],
)
def test_headline_filters(
    sample_warehouse: Path, filters: queries.Filters, spend: float, savings: float, requests: int
) -> None:
    h = Headline.from_frame(queries.headline(sample_warehouse, filters))
    assert (h.spend_usd, h.savings_usd, h.requests) == (
        pytest.approx(spend),
        pytest.approx(savings),
        requests,
    )


def test_spend_by_model_orders_by_spend(sample_warehouse: Path) -> None:
    df = queries.spend_by(sample_warehouse, ALL, "model")
    assert df.columns == ["model", "spend_usd", "savings_usd", "requests", "unpriced_requests"]
    assert df.rows() == [
        ("claude-sonnet-4-5", 3.00, 0.0, 2, 0),
        ("gpt-4o", 2.00, 1.50, 2, 0),
        ("gpt-4o-mini", 0.50, 0.50, 1, 0),
    ]


def test_spend_by_provider_with_customer_filter(sample_warehouse: Path) -> None:
    df = queries.spend_by(sample_warehouse, queries.Filters(MARCH_1, MARCH_5, "acme"), "provider")
    assert df.select("provider", "spend_usd", "requests").rows() == [("openai", 2.50, 3)]


def test_spend_by_user_top_n(sample_warehouse: Path) -> None:
    everyone = queries.spend_by(sample_warehouse, ALL, "user")
    assert everyone.select("end_user", "spend_usd", "requests").rows() == [
        ("carol", 3.00, 2),
        ("alice", 2.00, 2),
        ("bob", 0.50, 1),
    ]
    assert queries.spend_by(sample_warehouse, ALL, "user", top_n=2)["end_user"].to_list() == [
        "carol",
        "alice",
    ]


def test_spend_over_time_daily_and_hourly(sample_warehouse: Path) -> None:
    daily = queries.spend_over_time(sample_warehouse, ALL, "day")
    assert daily.rows() == [
        (dt.datetime(2025, 3, 1), 1.25, 0.25, 1),
        (dt.datetime(2025, 3, 2), 0.50, 0.50, 1),
        (dt.datetime(2025, 3, 3), 3.00, 0.0, 2),
        (dt.datetime(2025, 3, 5), 0.75, 1.25, 1),
    ]
    hourly = queries.spend_over_time(
        sample_warehouse, queries.Filters(dt.date(2025, 3, 3), dt.date(2025, 3, 3)), "hour"
    )
    assert hourly.rows() == [(dt.datetime(2025, 3, 3, 12), 3.00, 0.0, 2)]


def test_data_range_and_customers(sample_warehouse: Path) -> None:
    assert queries.data_range(sample_warehouse) == queries.DataRange(MARCH_1, MARCH_5)
    assert queries.customers(sample_warehouse) == ["acme", "globex"]


def test_unknown_prices_are_counted_not_summed_as_zero(make_warehouse, row) -> None:
    path = make_warehouse(
        [
            row(1, "2025-03-01 10:00", model="gpt-4o", cost=2.0, savings=1.0),
            row(2, "2025-03-01 11:00", model="mystery-model", cost=None, savings=None),
            row(3, "2025-03-01 12:00", model="mystery-model", cost=None, savings=None),
            row(4, "2025-03-01 12:30", model="other-new-model", cost=None, savings=None),
        ]
    )
    f = queries.Filters(MARCH_1, MARCH_1)
    h = Headline.from_frame(queries.headline(path, f))
    assert (h.spend_usd, h.requests, h.unpriced_requests) == (2.0, 4, 3)
    assert queries.unpriced_models(path, f).rows() == [("mystery-model", 2), ("other-new-model", 1)]
    by_model = {r["model"]: r for r in queries.spend_by(path, f, "model").iter_rows(named=True)}
    assert by_model["mystery-model"]["unpriced_requests"] == 2
    assert queries.spend_by(path, f, "user")["unpriced_requests"].to_list() == [3]


def test_simulated_requests_are_counted(make_warehouse, row) -> None:
    path = make_warehouse([row(1, "2025-03-01 10:00", is_simulated=True), row(2, "2025-03-01 11:00")])
    h = Headline.from_frame(queries.headline(path, queries.Filters(MARCH_1, MARCH_1)))
    assert h.simulated_requests == 1


def test_zero_savings_has_no_roi() -> None:
    h = Headline(3.0, 0.0, requests=1, error_requests=0, simulated_requests=0, unpriced_requests=0)
    assert (h.roi, format_pct(h.roi)) == (None, "n/a")
    assert h.savings_rate == 0.0
    empty = Headline(0.0, 0.0, 0, 0, 0, 0)
    assert (empty.savings_rate, empty.error_rate) == (None, None)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(5.5, "$5.50", id="dollars"),
        pytest.param(1234567.891, "$1,234,567.89", id="thousands"),
        pytest.param(0.0123, "$0.0123", id="sub-dollar"),
        pytest.param(0.0, "$0.00", id="zero"),
    ],
)
def test_format_usd(value: float, text: str) -> None:
    assert format_usd(value) == text


# --- warehouse access -------------------------------------------------------------------------------------


def test_missing_warehouse_is_reported_and_never_created(tmp_path: Path) -> None:
    path = tmp_path / "nope.duckdb"
    with pytest.raises(warehouse.WarehouseMissing):
        queries.headline(path, ALL)
    assert not path.exists()


def test_reads_leave_no_connection_open(sample_warehouse: Path) -> None:
    queries.headline(sample_warehouse, ALL)
    # DuckDB refuses a read-write connection in a process still holding a read-only one to the same file.
    con = duckdb.connect(str(sample_warehouse))
    con.close()


@pytest.mark.parametrize(
    ("with_agg", "rows", "message"),
    [
        pytest.param(False, True, "agg_user_metrics_hourly", id="aggregate-missing"),
        pytest.param(True, False, "no rows", id="empty"),
    ],
)
def test_check_ready_not_built(make_warehouse, with_agg: bool, rows: bool, message: str) -> None:
    path = make_warehouse(with_agg=with_agg) if rows else make_warehouse([], with_agg=with_agg)
    with pytest.raises(warehouse.WarehouseNotBuilt, match=message):
        warehouse.check_ready(path)


def test_check_ready_counts_rows(sample_warehouse: Path) -> None:
    assert warehouse.check_ready(sample_warehouse) == 5


def test_locked_warehouse_is_busy(sample_warehouse: Path, write_lock) -> None:
    with write_lock(sample_warehouse), pytest.raises(warehouse.WarehouseBusy):
        warehouse.check_ready(sample_warehouse)


@pytest.mark.parametrize("module", ["warehouse", "queries", "headline", "figures"])
def test_public_surface_is_declared(module: str) -> None:
    mod = importlib.import_module(f"dashboards.{module}")
    assert sorted(mod.__all__) == sorted(n for n in mod.__all__ if hasattr(mod, n))
    public = {
        n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == mod.__name__
    }
    assert public <= set(mod.__all__), f"undeclared public names in {module}: {public - set(mod.__all__)}"


def test_anonymous_calls_are_one_user(make_warehouse, row) -> None:
    path = make_warehouse([row(1, "2025-03-01 10:00", user=None), row(2, "2025-03-01 11:00", user=None)])
    by_user = queries.spend_by(path, queries.Filters(MARCH_1, MARCH_1), "user")
    assert by_user.select("end_user", "requests").rows() == [("(anonymous)", 2)]
