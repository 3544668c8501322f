"""Apex value dashboard — what AI cost and what Apex saved. Run: ``streamlit run dashboards/app.py``.

Page layout only: numbers come from ``dashboards.queries``, charts from ``dashboards.figures``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import streamlit as st

from dashboards import figures, queries, warehouse
from dashboards.headline import APEX_FEE_RATE, Headline, format_count, format_pct, format_usd
from gateway.config import ConfigError, load_settings

CACHE_TTL_S = 30
BUSY_RETRY_S = 5
ALL_CUSTOMERS = "All customers"
HOURLY_MAX_DAYS = 2
MATERIALIZE_HINT = (
    "Send traffic through the gateway, then materialize the warehouse: "
    "`dagster dev` → **Materialize all**, or `make demo`."
)
SIMULATED_BANNER = "Simulated traffic: these costs are what the calls would cost at list price; no provider was billed."
_BREAKDOWN_TITLES = {"model": "Spend by model", "provider": "Spend by provider", "user": "Spend by user"}
_BREAKDOWN_LABELS = {"model": "Model", "provider": "Provider", "user": "User"}


# Cached readers: arguments are plain values so Streamlit can hash them; each call opens, reads and
# closes its own read-only connection. Exceptions are not cached, so a busy warehouse is retried.
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _request_rows(path: str) -> int:
    return warehouse.check_ready(Path(path))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _data_range(path: str) -> queries.DataRange:
    return queries.data_range(Path(path))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _customers(path: str) -> list[str]:
    return queries.customers(Path(path))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner="Loading…")
def _page_data(path: str, start: dt.date, end: dt.date, customer: str | None, top_n: int) -> dict[str, pl.DataFrame]:
    p, f = Path(path), queries.Filters(start, end, customer)
    grain: queries.Grain = "hour" if f.days <= HOURLY_MAX_DAYS else "day"
    return {
        "headline": queries.headline(p, f),
        "unpriced": queries.unpriced_models(p, f),
        "over_time": queries.spend_over_time(p, f, grain),
        "model": queries.spend_by(p, f, "model"),
        "provider": queries.spend_by(p, f, "provider"),
        "user": queries.spend_by(p, f, "user", top_n=top_n),
    }


def _sidebar(path: Path) -> tuple[queries.Filters, int]:
    rng = _data_range(str(path))
    with st.sidebar:
        st.header("Filters")
        choice = st.selectbox("Customer", [ALL_CUSTOMERS, *_customers(str(path))])
        picked = st.date_input("Date range (UTC)", value=(rng.first, rng.last), min_value=rng.first, max_value=rng.last)
        top_n = st.slider("Top users shown", min_value=5, max_value=50, value=10, step=5)
        if st.button("Refresh now", help=f"Data refreshes on its own every {CACHE_TTL_S} s."):
            st.cache_data.clear()
    # While a range is being picked the widget holds only its first day.
    dates = tuple(picked) if isinstance(picked, tuple | list) else (picked,)
    start = dates[0] if dates else rng.first
    end = dates[1] if len(dates) > 1 else start
    customer = None if choice == ALL_CUSTOMERS else choice
    return queries.Filters(start, end, customer), top_n


def _honesty_banners(h: Headline, unpriced: pl.DataFrame) -> None:
    if h.simulated_requests:
        st.info(SIMULATED_BANNER, icon="🧪")
    if h.unpriced_requests:
        models = ", ".join(f"{m} ({n:,})" for m, n in unpriced.iter_rows())
        st.warning(
            f"{h.unpriced_requests:,} request(s) have cost unknown — not counted as $0. "
            f"No price is known for: {models}. Spend below excludes them.",
            icon="⚠️",
        )


def _metrics(h: Headline) -> None:
    top = st.columns(4)
    top[0].metric(
        "Total AI spend",
        format_usd(h.spend_usd),
        help="Sum of priced request costs" + (" (unknown prices excluded)." if h.unpriced_requests else "."),
    )
    top[1].metric("Apex savings", format_usd(h.savings_usd))
    top[2].metric("Spend without Apex", format_usd(h.spend_without_apex_usd), help="Spend + savings.")
    top[3].metric("Savings rate", format_pct(h.savings_rate), help="Savings ÷ spend without Apex.")
    bottom = st.columns(4)
    bottom[0].metric(
        "ROI",
        format_pct(h.roi),
        help=f"Net savings after Apex's fee ({APEX_FEE_RATE:.0%} of savings) ÷ the fee.",
    )
    bottom[1].metric("Requests", format_count(h.requests))
    bottom[2].metric("Error rate", format_pct(h.error_rate))


def _breakdown(frame: pl.DataFrame, by: queries.Breakdown, top_n: int) -> None:
    column = queries.BREAKDOWN_COLUMN[by]
    title = _BREAKDOWN_TITLES[by] + (f" (top {top_n})" if by == "user" else "")
    st.plotly_chart(figures.breakdown_bar(frame, column, title), key=f"chart_{by}")
    st.dataframe(
        frame,
        hide_index=True,
        key=f"table_{by}",
        column_config={
            column: _BREAKDOWN_LABELS[by],
            "spend_usd": st.column_config.NumberColumn("Spend", format="$%.4f"),
            "savings_usd": st.column_config.NumberColumn("Saved by Apex", format="$%.4f"),
            "requests": "Requests",
            "unpriced_requests": "Unpriced requests",
        },
    )


@st.fragment(run_every=BUSY_RETRY_S)
def _busy_notice(path: Path) -> None:
    """Say the warehouse is busy, and reload the page once the writer lets go of it."""
    try:
        warehouse.check_ready(path)
    except warehouse.WarehouseBusy:
        st.warning("The warehouse is busy — a dbt build is writing it. Refreshing shortly.", icon="⏳")
        return
    except (warehouse.WarehouseUnavailable, duckdb.Error):
        pass  # no longer busy; the full page run below says what is wrong instead
    st.rerun()


def _page(path: Path) -> None:
    _request_rows(str(path))
    filters, top_n = _sidebar(path)
    data = _page_data(str(path), filters.start, filters.end, filters.customer, top_n)
    h = Headline.from_frame(data["headline"])
    scope = filters.customer or "all customers"
    st.caption(f"{filters.start:%Y-%m-%d} → {filters.end:%Y-%m-%d} · {scope} · warehouse `{path}`")
    if h.requests == 0:
        st.info("No requests for this customer in this date range. Widen the range or pick another customer.")
        return
    _honesty_banners(h, data["unpriced"])
    _metrics(h)
    grain: queries.Grain = "hour" if filters.days <= HOURLY_MAX_DAYS else "day"
    st.plotly_chart(figures.spend_vs_savings(data["over_time"], grain), key="chart_over_time")
    tabs = st.tabs([_BREAKDOWN_TITLES[b] for b in queries.BREAKDOWNS])
    for tab, by in zip(tabs, queries.BREAKDOWNS, strict=True):
        with tab:
            _breakdown(data[by], by, top_n)


def main() -> None:
    st.set_page_config(page_title="Apex — AI spend & savings", page_icon="💸", layout="wide")
    st.title("AI spend & Apex savings")
    try:
        path = load_settings().data.warehouse_path.absolute()
    except ConfigError as exc:
        st.error(f"Apex configuration cannot be loaded:\n\n```\n{exc}\n```")
        return
    try:
        _page(path)
    except warehouse.WarehouseMissing:
        st.error(
            f"No warehouse file at `{path}`. {MATERIALIZE_HINT} "
            "To read a warehouse elsewhere, set `APEX_DATA__WAREHOUSE` or `data.warehouse` in apex.yaml."
        )
    except warehouse.WarehouseBusy:
        _busy_notice(path)
    except warehouse.WarehouseNotBuilt as exc:
        st.info(f"No spend data yet. {MATERIALIZE_HINT}")
        st.caption(str(exc))
    except duckdb.Error as exc:
        # e.g. the dbt models changed shape under the dashboard: say so plainly instead of a traceback.
        st.error(f"The warehouse at `{path}` could not be read: {exc}")


if __name__ == "__main__":  # streamlit runs this file as __main__; importing it draws nothing
    main()
