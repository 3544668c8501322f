"""The Spend & savings tab's questions: request-level numbers from ``fct_llm_spend``, per-user and over-time series
from the pre-aggregated ``agg_user_metrics_hourly``. ``cost_usd`` is NULL when a price is unknown: sums skip those
rows and every result carries an ``unpriced_requests`` count so the page can say so instead of counting them as $0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from dashboards.queries.filters import DataRange, Filters, event_date_where, hour_where
from dashboards.warehouse import SPEND_TABLE, USER_HOURLY_TABLE, read

__all__ = [
    "BREAKDOWNS",
    "BREAKDOWN_COLUMN",
    "Breakdown",
    "Grain",
    "customers",
    "data_range",
    "headline",
    "spend_by",
    "spend_over_time",
    "unpriced_models",
]

Grain = Literal["hour", "day"]
Breakdown = Literal["model", "provider", "user"]
BREAKDOWNS: tuple[Breakdown, ...] = ("model", "provider", "user")


def data_range(path: Path) -> DataRange:
    """First and last event date in the warehouse (the default date filter)."""
    (df,) = read(path, [(f"select min(event_date) as first, max(event_date) as last from {SPEND_TABLE}", [])])
    return DataRange(first=df["first"][0], last=df["last"][0])


def customers(path: Path) -> list[str]:
    (df,) = read(
        path,
        [(f"select distinct customer_id from {SPEND_TABLE} where customer_id is not null order by 1", [])],
    )
    return df["customer_id"].to_list()


def headline(path: Path, f: Filters) -> pl.DataFrame:
    """One row: spend, savings, requests, errors, and the simulated / unpriced / priced request counts."""
    where, params = event_date_where(f)
    sql = f"""
        select
            coalesce(sum(cost_usd), 0)::double                          as spend_usd,
            coalesce(sum(savings_usd), 0)::double                       as savings_usd,
            count(*)                                                    as requests,
            count(*) filter (where is_error)                            as error_requests,
            count(*) filter (where is_simulated)                        as simulated_requests,
            count(*) filter (where price_status = 'unknown')            as unpriced_requests
        from {SPEND_TABLE}
        where {where}
    """
    (df,) = read(path, [(sql, params)])
    return df


def unpriced_models(path: Path, f: Filters) -> pl.DataFrame:
    """Models whose price is unknown, with how many requests each (most first)."""
    where, params = event_date_where(f)
    sql = f"""
        select coalesce(served_model, requested_model, '(unknown)') as model, count(*) as requests
        from {SPEND_TABLE}
        where {where} and price_status = 'unknown'
        group by 1
        order by requests desc, model
    """
    (df,) = read(path, [(sql, params)])
    return df


def spend_over_time(path: Path, f: Filters, grain: Grain) -> pl.DataFrame:
    """Spend and savings per hour or day: columns ``period``, ``spend_usd``, ``savings_usd``, ``requests``."""
    where, params = hour_where(f)
    sql = f"""
        select
            date_trunc('{grain}', hour)::timestamp      as period,
            coalesce(sum(cost_usd), 0)::double         as spend_usd,
            coalesce(sum(savings_usd), 0)::double      as savings_usd,
            sum(requests)::bigint                      as requests
        from {USER_HOURLY_TABLE}
        where {where}
        group by 1
        order by 1
    """
    (df,) = read(path, [(sql, params)])
    return df


BREAKDOWN_COLUMN: dict[Breakdown, str] = {"model": "model", "provider": "provider", "user": "end_user"}
"""The label column each breakdown's result carries."""
_SPEND_EXPR = {"model": "coalesce(served_model, requested_model)", "provider": "provider"}


def spend_by(path: Path, f: Filters, by: Breakdown, top_n: int | None = None) -> pl.DataFrame:
    """Spend per model, provider or end user, highest spend first.

    Columns: ``BREAKDOWN_COLUMN[by]``, ``spend_usd``, ``savings_usd``, ``requests``, ``unpriced_requests``.
    """
    if by == "user":
        where, params = hour_where(f)
        sql = f"""
            select
                coalesce(end_user, '(anonymous)')                as end_user,
                coalesce(sum(cost_usd), 0)::double          as spend_usd,
                coalesce(sum(savings_usd), 0)::double       as savings_usd,
                sum(requests)::bigint                       as requests,
                sum(unpriced_requests)::bigint              as unpriced_requests
            from {USER_HOURLY_TABLE}
            where {where}
            group by 1
        """
    else:
        where, params = event_date_where(f)
        sql = f"""
            select
                coalesce({_SPEND_EXPR[by]}, '(unknown)')    as {by},
                coalesce(sum(cost_usd), 0)::double          as spend_usd,
                coalesce(sum(savings_usd), 0)::double       as savings_usd,
                count(*)                                    as requests,
                count(*) filter (where price_status = 'unknown') as unpriced_requests
            from {SPEND_TABLE}
            where {where}
            group by 1
        """
    sql += f" order by spend_usd desc, requests desc, {BREAKDOWN_COLUMN[by]}"
    if top_n is not None:
        sql += " limit ?"
        params = [*params, top_n]
    (df,) = read(path, [(sql, params)])
    return df
