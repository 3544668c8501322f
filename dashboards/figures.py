"""Plotly figures for the value dashboard, built from the frames ``dashboards.queries`` returns."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboards.queries import SIMILARITY_BIN, Grain

__all__ = [
    "CACHE_STATUS_LABELS",
    "LEVER_LABELS",
    "SAVINGS_COLOR",
    "SPEND_COLOR",
    "STATUS_LABELS",
    "breakdown_bar",
    "cache_status_bar",
    "lever_savings_bar",
    "routing_tiers_bar",
    "similarity_histogram",
    "spend_vs_savings",
]

SPEND_COLOR = "#4C78A8"
SAVINGS_COLOR = "#54A24B"
_USD_HOVER = "%{y:$,.4f}"


def spend_vs_savings(over_time: pl.DataFrame, grain: Grain) -> go.Figure:
    """Stacked bars per period: what was paid, plus what Apex saved (the stack is spend without Apex)."""
    periods = over_time["period"].to_list()
    fig = go.Figure(
        [
            go.Bar(
                name="Spend",
                x=periods,
                y=over_time["spend_usd"].to_list(),
                marker_color=SPEND_COLOR,
                hovertemplate=f"Spend {_USD_HOVER}<extra></extra>",
            ),
            go.Bar(
                name="Saved by Apex",
                x=periods,
                y=over_time["savings_usd"].to_list(),
                marker_color=SAVINGS_COLOR,
                hovertemplate=f"Saved {_USD_HOVER}<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        barmode="stack",
        title=f"Spend vs savings per {grain}",
        yaxis_title="USD",
        yaxis_tickprefix="$",
        xaxis_title=None,
        legend={"orientation": "h", "y": 1.1},
        hovermode="x unified",
        margin={"t": 60, "b": 20},
    )
    if grain == "day":
        fig.update_xaxes(tickformat="%b %d", dtick="D1" if len(periods) <= 14 else None)
    return fig


def breakdown_bar(frame: pl.DataFrame, label_column: str, title: str) -> go.Figure:
    """Horizontal stacked spend + savings bars, one per label, largest spend on top."""
    labels = frame[label_column].to_list()
    fig = go.Figure(
        [
            go.Bar(
                name="Spend",
                y=labels,
                x=frame["spend_usd"].to_list(),
                orientation="h",
                marker_color=SPEND_COLOR,
                hovertemplate="%{y}: spend %{x:$,.4f}<extra></extra>",
            ),
            go.Bar(
                name="Saved by Apex",
                y=labels,
                x=frame["savings_usd"].to_list(),
                orientation="h",
                marker_color=SAVINGS_COLOR,
                hovertemplate="%{y}: saved %{x:$,.4f}<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        barmode="stack",
        title=title,
        xaxis_title="USD",
        xaxis_tickprefix="$",
        yaxis={"autorange": "reversed", "type": "category"},
        legend={"orientation": "h", "y": 1.12},
        height=max(260, 40 * len(labels) + 120),
        margin={"t": 60, "b": 20},
    )
    return fig


# --- optimizers ---------------------------------------------------------------------------------------------

LEVER_LABELS = {"cache": "Cache", "routing": "Routing", "compression": "Compression"}
STATUS_LABELS = {"verified": "Verified (billed)", "unverified": "Unverified", "blocked": "Blocked"}
_STATUS_COLORS = {"verified": SAVINGS_COLOR, "unverified": "#EECA3B", "blocked": "#BAB0AC"}
CACHE_STATUS_LABELS = {
    "hit_exact": "Exact hits",
    "hit_semantic": "Semantic hits",
    "shadow_hit": "Shadow hits",
    "miss": "Misses",
    "bypass": "Bypassed",
}
_SIMILARITY_SERIES = {"hit_semantic": ("Semantic hits", SAVINGS_COLOR), "shadow_hit": ("Shadow hits", "#B279A2")}
_TIER_SERIES = {"weak": ("Weak (cheap) model", SAVINGS_COLOR), "strong": ("Strong model", SPEND_COLOR)}


def _layout(fig: go.Figure, title: str, **extra: object) -> go.Figure:
    fig.update_layout(title=title, legend={"orientation": "h", "y": 1.12}, margin={"t": 80, "b": 20}, **extra)
    return fig


def lever_savings_bar(levers: pl.DataFrame) -> go.Figure:
    """Savings per lever stacked by verification status (``queries.savings_by_lever``); negative routing savings
    (a call routed to a dearer model) stack below zero."""
    labels = [LEVER_LABELS.get(lever, lever) for lever in levers["lever"].to_list()]
    bars = [
        go.Bar(
            name=STATUS_LABELS[status],
            x=labels,
            y=levers[f"{status}_usd"].to_list(),
            customdata=levers[f"{status}_requests"].to_list(),
            marker_color=_STATUS_COLORS[status],
            hovertemplate=f"%{{x}}: {status} %{{y:$,.4f}} (%{{customdata:,}} requests)<extra></extra>",
        )
        for status in STATUS_LABELS
    ]
    return _layout(go.Figure(bars), "Savings by lever", barmode="relative", yaxis_title="USD", yaxis_tickprefix="$")


def cache_status_bar(statuses: pl.DataFrame) -> go.Figure:
    """Calls per cache outcome (``queries.cache_statuses``)."""
    fig = go.Figure(
        go.Bar(
            x=[CACHE_STATUS_LABELS.get(s, s) for s in statuses["cache_status"].to_list()],
            y=statuses["requests"].to_list(),
            marker_color=SPEND_COLOR,
            hovertemplate="%{x}: %{y:,} calls<extra></extra>",
        )
    )
    return _layout(fig, "Cache lookups by outcome", yaxis_title="Calls", showlegend=False)


def similarity_histogram(bins: pl.DataFrame) -> go.Figure:
    """Similarity of semantic hits vs shadow hits, from the pre-binned ``queries.cache_similarity``."""
    bars = []
    for status, (name, color) in _SIMILARITY_SERIES.items():
        rows = bins.filter(pl.col("cache_status") == status)
        bars.append(
            go.Bar(
                name=name,
                x=[b + SIMILARITY_BIN / 2 for b in rows["bin_start"].to_list()],
                y=rows["requests"].to_list(),
                width=SIMILARITY_BIN,
                marker_color=color,
                opacity=0.7,
                hovertemplate=f"{name}: %{{y:,}} at %{{x:.3f}} ± {SIMILARITY_BIN / 2:g}<extra></extra>",
            )
        )
    return _layout(
        go.Figure(bars),
        "Similarity: semantic hits vs shadow hits",
        barmode="overlay",
        xaxis_title="Cosine similarity",
        yaxis_title="Calls",
    )


def routing_tiers_bar(tiers: pl.DataFrame) -> go.Figure:
    """Learned routing's calls to the weak vs the strong model per policy version (``queries.routing_tiers``)."""
    bars = []
    for tier, (name, color) in _TIER_SERIES.items():
        rows = tiers.filter(pl.col("tier") == tier)
        bars.append(
            go.Bar(
                name=name,
                x=rows["policy_version"].to_list(),
                y=rows["requests"].to_list(),
                marker_color=color,
                hovertemplate=f"%{{x}}: %{{y:,}} calls to the {tier} model<extra></extra>",
            )
        )
    policies = tiers["policy_version"].unique(maintain_order=True).to_list()  # the query's order: first decided
    return _layout(
        go.Figure(bars),
        "Learned routing: weak vs strong model per policy",
        barmode="stack",
        xaxis={"type": "category", "title": "Policy version", "categoryorder": "array", "categoryarray": policies},
        yaxis_title="Calls",
    )
