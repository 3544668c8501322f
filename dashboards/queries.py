"""The dashboard's questions to the warehouse, as pure functions: warehouse path + filters in, polars out.

Request-level numbers come from ``fct_llm_spend``; per-user and over-time series from the pre-aggregated
``agg_user_metrics_hourly``. ``cost_usd`` is NULL when a price is unknown: sums skip those rows and every
result carries an ``unpriced_requests`` count so the page can say so instead of counting them as $0.

The Optimizers tab reads savings per lever and verification status from ``fct_savings`` (only ``verified`` rows
are billable) and what each optimizer did (cache outcomes, routing tiers, compression results) from
``fct_llm_spend``'s optimizer columns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from dashboards.warehouse import SAVINGS_TABLE, SPEND_TABLE, USER_HOURLY_TABLE, read

__all__ = [
    "BREAKDOWNS",
    "BREAKDOWN_COLUMN",
    "CACHE_STATUSES",
    "LEVERS",
    "SIMILARITY_BIN",
    "VERIFICATION_STATUSES",
    "Breakdown",
    "DataRange",
    "Filters",
    "Grain",
    "cache_similarity",
    "cache_statuses",
    "compression_fallbacks",
    "compression_summary",
    "customers",
    "data_range",
    "headline",
    "routing_tiers",
    "savings_by_lever",
    "spend_by",
    "spend_over_time",
    "unbilled_reasons",
    "unpriced_models",
]

Grain = Literal["hour", "day"]
Breakdown = Literal["model", "provider", "user"]
BREAKDOWNS: tuple[Breakdown, ...] = ("model", "provider", "user")


@dataclass(frozen=True)
class Filters:
    """Inclusive date range (UTC event dates) and an optional customer."""

    start: dt.date
    end: dt.date
    customer: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class DataRange:
    first: dt.date
    last: dt.date


def _spend_where(f: Filters) -> tuple[str, list[Any]]:
    sql = "event_date between ? and ?"
    params: list[Any] = [f.start, f.end]
    if f.customer is not None:
        sql, params = sql + " and customer_id = ?", [*params, f.customer]
    return sql, params


def _hourly_where(f: Filters) -> tuple[str, list[Any]]:
    sql = "hour >= ? and hour < ?"
    params: list[Any] = [f.start, f.end + dt.timedelta(days=1)]
    if f.customer is not None:
        sql, params = sql + " and customer_id = ?", [*params, f.customer]
    return sql, params


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
    where, params = _spend_where(f)
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
    where, params = _spend_where(f)
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
    where, params = _hourly_where(f)
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
        where, params = _hourly_where(f)
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
        where, params = _spend_where(f)
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


# --- optimizers ---------------------------------------------------------------------------------------------

LEVERS: tuple[str, ...] = ("cache", "routing", "compression")
"""The savings levers, in the order the page shows them (any other lever in the data follows them)."""
VERIFICATION_STATUSES: tuple[str, ...] = ("verified", "unverified", "blocked")
CACHE_STATUSES: tuple[str, ...] = ("hit_exact", "hit_semantic", "shadow_hit", "miss", "bypass")
SIMILARITY_BIN = 0.01
"""Width of a ``cache_similarity`` histogram bin."""


def _ordered(values: tuple[str, ...], column: str) -> tuple[str, list[Any]]:
    """``values`` as an inline table ``(column, pos)`` to outer-join on, so each shows up, zero or not, in order.

    Its parameters are positional: pass them where the returned SQL sits in the query text."""
    rows = ", ".join("(?, ?)" for _ in values)
    params: list[Any] = [p for pos, value in enumerate(values) for p in (value, pos)]
    return f"(select * from (values {rows}) as t({column}, pos))", params


def savings_by_lever(path: Path, f: Filters) -> pl.DataFrame:
    """Savings claimed per lever, split by verification status (only ``verified`` is billed).

    One row per lever (cache, routing, compression always; other levers if present): ``lever``,
    ``verified_usd``, ``unverified_usd``, ``blocked_usd`` (blocked claims are mostly unpriced, so their sum
    undercounts), ``requests``, ``verified_requests``, ``unverified_requests``, ``blocked_requests``,
    ``tokens_saved``.
    """
    levers, lever_params = _ordered(LEVERS, "lever")
    where, params = _spend_where(f)
    sql = f"""
        with levers as {levers},
        claims as (
            select
                lever,
                sum(savings_usd) filter (where verification_status = 'verified')      as verified_usd,
                sum(savings_usd) filter (where verification_status = 'unverified')    as unverified_usd,
                sum(savings_usd) filter (where verification_status = 'blocked')       as blocked_usd,
                count(*)                                                                as requests,
                count(*) filter (where verification_status = 'verified')               as verified_requests,
                count(*) filter (where verification_status = 'unverified')             as unverified_requests,
                count(*) filter (where verification_status = 'blocked')                as blocked_requests,
                sum(tokens_saved)                                                       as tokens_saved
            from {SAVINGS_TABLE}
            where {where}
            group by lever
        )
        select
            lever,
            coalesce(verified_usd, 0)::double           as verified_usd,
            coalesce(unverified_usd, 0)::double         as unverified_usd,
            coalesce(blocked_usd, 0)::double            as blocked_usd,
            coalesce(requests, 0)::bigint               as requests,
            coalesce(verified_requests, 0)::bigint      as verified_requests,
            coalesce(unverified_requests, 0)::bigint    as unverified_requests,
            coalesce(blocked_requests, 0)::bigint       as blocked_requests,
            coalesce(tokens_saved, 0)::bigint           as tokens_saved
        from levers
        full join claims using (lever)
        order by coalesce(pos, {len(LEVERS)}), lever
    """
    (df,) = read(path, [(sql, [*lever_params, *params])])
    return df


def unbilled_reasons(path: Path, f: Filters) -> pl.DataFrame:
    """Why savings were not billed: ``verification_status``, ``lever``, ``reason`` (the reason's kind, e.g.
    ``unknown_price`` or ``estimated_usage``, without the per-call details), ``requests``, ``savings_usd``;
    most requests first."""
    where, params = _spend_where(f)
    sql = f"""
        select
            verification_status,
            lever,
            split_part(coalesce(blocked_reason, unverified_reason, '(no reason given)'), ':', 1) as reason,
            count(*) as requests,
            coalesce(sum(savings_usd), 0)::double as savings_usd
        from {SAVINGS_TABLE}
        where {where} and verification_status <> 'verified'
        group by all
        order by requests desc, verification_status, lever, reason
    """
    (df,) = read(path, [(sql, params)])
    return df


def cache_statuses(path: Path, f: Filters) -> pl.DataFrame:
    """Calls per cache outcome (``CACHE_STATUSES`` in order, zero or not; calls without a cache status did not
    opt into a cache and are left out).

    Columns ``cache_status``, ``requests``, ``savings_usd`` (cache savings claimed), ``baseline_cost_usd`` (what
    the requested model cost or would have cost for those calls; for ``shadow_hit`` this is what the semantic
    cache would have saved had it been on) and ``unpriced_requests`` (baseline unknown, left out of the sum).
    """
    statuses, status_params = _ordered(CACHE_STATUSES, "cache_status")
    where, params = _spend_where(f)
    sql = f"""
        with statuses as {statuses},
        calls as (
            select
                cache_status,
                count(*) as requests,
                coalesce(sum(savings_cache_usd), 0)::double as savings_usd,
                coalesce(sum(baseline_cost_usd), 0)::double as baseline_cost_usd,
                count(*) filter (where baseline_cost_usd is null) as unpriced_requests
            from {SPEND_TABLE}
            where {where} and cache_status is not null
            group by cache_status
        )
        select
            cache_status,
            coalesce(requests, 0)::bigint as requests,
            coalesce(savings_usd, 0)::double as savings_usd,
            coalesce(baseline_cost_usd, 0)::double as baseline_cost_usd,
            coalesce(unpriced_requests, 0)::bigint as unpriced_requests
        from statuses
        full join calls using (cache_status)
        order by coalesce(pos, {len(CACHE_STATUSES)}), cache_status
    """
    (df,) = read(path, [(sql, [*status_params, *params])])
    return df


def cache_similarity(path: Path, f: Filters) -> pl.DataFrame:
    """Histogram of ``cache_similarity`` for semantic hits and shadow hits, binned by ``SIMILARITY_BIN``.

    Columns ``cache_status`` (``hit_semantic`` | ``shadow_hit``), ``bin_start`` (a bin is
    ``[bin_start, bin_start + SIMILARITY_BIN)``; 1.0 falls in the last bin) and ``requests``; only non-empty bins.
    """
    where, params = _spend_where(f)
    bins = round(1 / SIMILARITY_BIN)
    # round() first so e.g. 0.57 (56.99999… x 100 in binary) lands in its own bin, not the one below
    sql = f"""
        select
            cache_status,
            least(greatest(floor(round(cache_similarity * {bins}, 6)), 0), {bins - 1})::integer / {bins}.0 as bin_start,
            count(*) as requests
        from {SPEND_TABLE}
        where {where} and cache_status in ('hit_semantic', 'shadow_hit') and cache_similarity is not null
        group by all
        order by cache_status, bin_start
    """
    (df,) = read(path, [(sql, params)])
    return df


def routing_tiers(path: Path, f: Filters) -> pl.DataFrame:
    """Learned routing (model ``apex/auto``): calls sent to the weak or the strong model, per policy version.

    Only calls whose ``routing_decision`` is learned routing's (``auto: weak (…)`` / ``auto: strong (…)``).
    Columns ``policy_version`` (``(no policy loaded)`` when the gateway had none and sent the strong model),
    ``tier`` (``weak`` | ``strong``), ``requests``, ``savings_usd`` (routing savings claimed) and
    ``verified_savings_usd`` (the billable part); policies in the order they first decided, weak before strong.
    """
    where, params = _spend_where(f)
    sql = f"""
        with routed as (
            select
                event_id,
                ts_start,
                coalesce(policy_version, '(no policy loaded)') as policy_version,
                case when routing_decision like 'auto: weak%' then 'weak' else 'strong' end as tier,
                savings_routing_usd
            from {SPEND_TABLE}
            where {where} and (routing_decision like 'auto: weak%' or routing_decision like 'auto: strong%')
        ),
        verified as (
            select event_id, savings_usd
            from {SAVINGS_TABLE}
            where lever = 'routing' and verification_status = 'verified'
        ),
        tiers as (
            select
                policy_version,
                tier,
                min(ts_start) as first_seen,
                count(*) as requests,
                coalesce(sum(routed.savings_routing_usd), 0)::double as savings_usd,
                coalesce(sum(verified.savings_usd), 0)::double as verified_savings_usd
            from routed
            left join verified using (event_id)
            group by policy_version, tier
        )
        select policy_version, tier, requests, savings_usd, verified_savings_usd
        from tiers
        order by min(first_seen) over (partition by policy_version), policy_version, tier = 'strong', tier
    """
    (df,) = read(path, [(sql, params)])
    return df


def compression_summary(path: Path, f: Filters) -> pl.DataFrame:
    """One row over the calls that opted into compression: ``requests``, ``compressed``, ``unchanged``,
    ``fallbacks`` (the guard sent the original), ``tokens_saved`` and ``savings_usd`` (compression savings claimed).
    """
    where, params = _spend_where(f)
    sql = f"""
        select
            count(*) as requests,
            count(*) filter (where compression_status = 'compressed') as compressed,
            count(*) filter (where compression_status = 'unchanged') as unchanged,
            count(*) filter (where compression_status like 'fallback%') as fallbacks,
            coalesce(sum(compression_tokens_saved), 0)::bigint as tokens_saved,
            coalesce(sum(savings_compression_usd), 0)::double as savings_usd
        from {SPEND_TABLE}
        where {where} and compression_status is not null
    """
    (df,) = read(path, [(sql, params)])
    return df


def compression_fallbacks(path: Path, f: Filters, top_n: int = 5) -> pl.DataFrame:
    """Why the compression guard sent the original prompt, most frequent first: ``reason``, ``requests``.

    Reasons are grouped by kind (``number lost``, ``final question lost``, ``quality < 0.9``, ``error``…): the
    lost item itself is prompt content and is not shown.
    """
    where, params = _spend_where(f)
    sql = f"""
        with fallbacks as (
            select trim(regexp_replace(compression_status, '^fallback:?', '')) as detail
            from {SPEND_TABLE}
            where {where} and compression_status like 'fallback%'
        )
        select
            case
                when detail = '' then '(no reason given)'
                when detail like 'quality %'
                    then regexp_replace(detail, '^quality [^<]*< *([^:]*).*$', 'quality < \\1')
                else trim(split_part(detail, ':', 1))
            end as reason,
            count(*) as requests
        from fallbacks
        group by reason
        order by requests desc, reason
        limit ?
    """
    (df,) = read(path, [(sql, [*params, top_n])])
    return df
