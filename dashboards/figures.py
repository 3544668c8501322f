"""Plotly figures for the value dashboard, built from the frames ``dashboards.queries`` returns."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboards.queries import Grain

__all__ = ["SAVINGS_COLOR", "SPEND_COLOR", "breakdown_bar", "spend_vs_savings"]

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
