"""Apex value dashboard — what AI cost and what Apex saved. Run: ``streamlit run dashboards/app.py``.

Page layout only: numbers come from ``dashboards.queries``, charts from ``dashboards.figures``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import streamlit as st

from contracts.settings import ConfigError, load_dashboard_settings
from dashboards import figures, queries, warehouse
from dashboards.headline import APEX_FEE_RATE, Headline, format_count, format_pct, format_usd

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
_USD = "$%.4f"
SPEND_TAB, OPTIMIZERS_TAB = "Spend & savings", "Optimizers"
VIEW_KEY = "view"
"""Session-state key of the page's top-level tabs (holds the open tab's label)."""
CACHE_OPT_IN = (
    "Semantic cache: send header `x-apex-semantic-cache: on`, or `shadow` to only measure what it would save."
)
ROUTING_OPT_IN = "Learned routing: ask for model `apex/auto`."
COMPRESSION_OPT_IN = "Compression: send header `x-apex-compress: on`."
KEY_OPT_IN = "Keys and models can opt in too (`apex keys update`, `models[].optimize` in apex.yaml)."
NO_OPTIMIZER_DATA = (
    "No optimizer activity for this customer in this date range. Optimizers are opt-in per request: "
    f"{CACHE_OPT_IN} {COMPRESSION_OPT_IN} {ROUTING_OPT_IN} {KEY_OPT_IN}"
)
BILLED_NOTE = (
    "Only **verified** savings are billed: priced by one price table, with provider-reported usage, and "
    "re-derived from the event's own tokens and unit prices. Unverified savings (estimated usage, or a claim "
    "that does not re-derive) and blocked savings (unknown price, no usage) are shown here but never invoiced."
)
SAVINGS_NOT_BUILT = f"Optimizer savings (`fct_savings`) are not in the warehouse yet. {MATERIALIZE_HINT}"
OPTIMIZER_COLUMNS_MISSING = (
    f"The optimizer data in this warehouse cannot be read; it may predate the optimizer columns. {MATERIALIZE_HINT}"
)


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


@st.cache_data(ttl=CACHE_TTL_S, show_spinner="Loading…")
def _optimizer_data(path: str, start: dt.date, end: dt.date, customer: str | None) -> dict[str, pl.DataFrame]:
    p, f = Path(path), queries.Filters(start, end, customer)
    return {
        "levers": queries.savings_by_lever(p, f),
        "unbilled": queries.unbilled_reasons(p, f),
        "cache": queries.cache_statuses(p, f),
        "similarity": queries.cache_similarity(p, f),
        "routing": queries.routing_tiers(p, f),
        "compression": queries.compression_summary(p, f),
        "fallbacks": queries.compression_fallbacks(p, f),
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
    # Only the open tab runs (on_change="rerun"), so the optimizer queries cost nothing until asked for.
    spend_tab, optimizers_tab = st.tabs([SPEND_TAB, OPTIMIZERS_TAB], key=VIEW_KEY, on_change="rerun")
    if spend_tab.open:
        with spend_tab:
            _spend(data, filters, top_n)
    if optimizers_tab.open:
        with optimizers_tab:
            _optimizers(path, filters)


def _spend(data: dict[str, pl.DataFrame], filters: queries.Filters, top_n: int) -> None:
    grain: queries.Grain = "hour" if filters.days <= HOURLY_MAX_DAYS else "day"
    st.plotly_chart(figures.spend_vs_savings(data["over_time"], grain), key="chart_over_time")
    tabs = st.tabs([_BREAKDOWN_TITLES[b] for b in queries.BREAKDOWNS])
    for tab, by in zip(tabs, queries.BREAKDOWNS, strict=True):
        with tab:
            _breakdown(data[by], by, top_n)


# --- Optimizers tab: what each lever saved (and what of it is billed), and what each optimizer did ---------


def _total(frame: pl.DataFrame, column: str) -> float:
    return float(frame[column].sum() or 0)


def _status_row(cache: pl.DataFrame, status: str) -> dict[str, Any]:
    """``queries.cache_statuses`` has a row for every known status, zero or not."""
    return cache.filter(pl.col("cache_status") == status).row(0, named=True)


def _has_optimizer_data(data: dict[str, pl.DataFrame]) -> bool:
    return any(_total(data[name], "requests") > 0 for name in ("levers", "cache", "routing", "compression"))


def _optimizers(path: Path, filters: queries.Filters) -> None:
    try:
        data = _optimizer_data(str(path), filters.start, filters.end, filters.customer)
    except warehouse.WarehouseNotBuilt as exc:
        st.info(SAVINGS_NOT_BUILT)
        st.caption(str(exc))
        return
    except duckdb.Error as exc:
        # e.g. marts built before the optimizer columns existed: say so here and keep the tabs usable.
        st.error(f"{OPTIMIZER_COLUMNS_MISSING}\n\n`{exc}`")
        return
    if not _has_optimizer_data(data):
        st.info(NO_OPTIMIZER_DATA, icon="🧰")
        return
    _lever_savings(data["levers"], data["unbilled"])
    _semantic_cache(data["cache"], data["similarity"])
    _learned_routing(data["routing"])
    _compression(data["compression"], data["fallbacks"])


def _lever_savings(levers: pl.DataFrame, unbilled: pl.DataFrame) -> None:
    st.subheader("Savings by lever")
    st.markdown(BILLED_NOTE)
    cols = st.columns(3)
    for col, status in zip(cols, queries.VERIFICATION_STATUSES, strict=True):
        col.metric(
            f"{figures.STATUS_LABELS[status]} savings",
            format_usd(_total(levers, f"{status}_usd")),
            help=f"{format_count(int(_total(levers, f'{status}_requests')))} lever claim(s).",
        )
    st.plotly_chart(figures.lever_savings_bar(levers), key="chart_levers")
    st.dataframe(
        levers.with_columns(pl.col("lever").replace(figures.LEVER_LABELS)),
        hide_index=True,
        key="table_levers",
        column_config={
            "lever": "Lever",
            "verified_usd": st.column_config.NumberColumn("Verified (billed)", format=_USD),
            "unverified_usd": st.column_config.NumberColumn("Unverified", format=_USD),
            "blocked_usd": st.column_config.NumberColumn("Blocked (priced part)", format=_USD),
            "requests": "Requests",
            "verified_requests": "Verified requests",
            "unverified_requests": "Unverified requests",
            "blocked_requests": "Blocked requests",
            "tokens_saved": "Tokens saved",
        },
    )
    if unbilled.height:
        st.caption("Why some savings are not billed")
        st.dataframe(
            unbilled,
            hide_index=True,
            key="table_unbilled",
            column_config={
                "verification_status": "Status",
                "lever": "Lever",
                "reason": "Reason",
                "requests": "Requests",
                "savings_usd": st.column_config.NumberColumn("Savings claimed", format=_USD),
            },
        )


def _semantic_cache(cache: pl.DataFrame, similarity: pl.DataFrame) -> None:
    st.subheader("Semantic cache")
    if _total(cache, "requests") == 0:
        st.info(f"No cache lookups in this range. {CACHE_OPT_IN}")
        return
    shadow = _status_row(cache, "shadow_hit")
    cols = st.columns(4)
    cols[0].metric("Exact hits", format_count(int(_status_row(cache, "hit_exact")["requests"])))
    cols[1].metric("Semantic hits", format_count(int(_status_row(cache, "hit_semantic")["requests"])))
    cols[2].metric("Shadow hits", format_count(int(shadow["requests"])))
    unpriced = int(shadow["unpriced_requests"])
    cols[3].metric(
        "Would have saved (shadow)",
        format_usd(float(shadow["baseline_cost_usd"])),
        help="Baseline cost of the calls the semantic cache matched in shadow mode: what turning it on "
        "would have saved. " + (f"{unpriced:,} shadow hit(s) with an unknown price are left out." if unpriced else ""),
    )
    left, right = st.columns(2)
    with left:
        st.plotly_chart(figures.cache_status_bar(cache), key="chart_cache_statuses")
    with right:
        if similarity.height:
            st.plotly_chart(figures.similarity_histogram(similarity), key="chart_similarity")
        else:
            st.caption("No semantic or shadow hits yet, so no similarities to show.")


def _learned_routing(routing: pl.DataFrame) -> None:
    st.subheader("Learned routing")
    if routing.height == 0:
        st.info(f"No learned-routing calls in this range. {ROUTING_OPT_IN}")
        return
    calls = int(_total(routing, "requests"))
    weak = int(_total(routing.filter(pl.col("tier") == "weak"), "requests"))
    cols = st.columns(4)
    cols[0].metric("Auto-routed calls", format_count(calls))
    cols[1].metric("Sent to the weak model", f"{weak:,} ({format_pct(weak / calls)})")
    cols[2].metric("Routing savings", format_usd(_total(routing, "savings_usd")), help="Claimed on auto-routed calls.")
    cols[3].metric("Of which verified (billed)", format_usd(_total(routing, "verified_savings_usd")))
    st.plotly_chart(figures.routing_tiers_bar(routing), key="chart_routing")
    st.dataframe(
        routing,
        hide_index=True,
        key="table_routing",
        column_config={
            "policy_version": "Policy version",
            "tier": "Model tier",
            "requests": "Calls",
            "savings_usd": st.column_config.NumberColumn("Savings claimed", format=_USD),
            "verified_savings_usd": st.column_config.NumberColumn("Verified (billed)", format=_USD),
        },
    )


def _compression(summary: pl.DataFrame, fallbacks: pl.DataFrame) -> None:
    st.subheader("Compression")
    row = summary.row(0, named=True)
    if row["requests"] == 0:
        st.info(f"No compression in this range. {COMPRESSION_OPT_IN}")
        return
    cols = st.columns(4)
    cols[0].metric(
        "Calls compressed",
        format_count(row["compressed"]),
        help=f"Of {row['requests']:,} calls that opted in; {row['unchanged']:,} had nothing to compress.",
    )
    cols[1].metric("Tokens saved", format_count(row["tokens_saved"]))
    cols[2].metric(
        "Guard fallbacks",
        format_count(row["fallbacks"]),
        help="Calls where the guard sent the original prompt because compression would have lost something.",
    )
    cols[3].metric("Compression savings", format_usd(row["savings_usd"]), help="Claimed; see the lever table above.")
    if fallbacks.height:
        st.caption("Top fallback reasons")
        st.dataframe(
            fallbacks, hide_index=True, key="table_fallbacks", column_config={"reason": "Reason", "requests": "Calls"}
        )


def main() -> None:
    st.set_page_config(page_title="Apex — AI spend & savings", page_icon="💸", layout="wide")
    st.title("AI spend & Apex savings")
    try:
        path = load_dashboard_settings().data.warehouse_path.absolute()
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
