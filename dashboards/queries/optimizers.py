"""The Optimizers tab's questions, answered from dbt's daily optimizer marts (dbt/models/marts/savings/): savings
per lever and verification status (only ``verified`` is billed) from ``agg_savings_by_lever_daily``, and what each
optimizer did from ``agg_cache_outcomes_daily``, ``agg_cache_similarity_daily``, ``agg_routing_tiers_daily`` and
``agg_compression_daily``. The marts are grouped per UTC day and customer, so a render sums a few rows per day
instead of grouping every request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from dashboards.queries.filters import Filters, day_where
from dashboards.warehouse import SCHEMA, read

__all__ = [
    "CACHE_OUTCOMES_TABLE",
    "CACHE_SIMILARITY_TABLE",
    "CACHE_STATUSES",
    "COMPRESSION_TABLE",
    "LEVERS",
    "ROUTING_TIERS_TABLE",
    "SAVINGS_BY_LEVER_TABLE",
    "SIMILARITY_BIN",
    "VERIFICATION_STATUSES",
    "cache_similarity",
    "cache_statuses",
    "compression_fallbacks",
    "compression_summary",
    "routing_tiers",
    "savings_by_lever",
    "unbilled_reasons",
]

SAVINGS_BY_LEVER_TABLE = f"{SCHEMA}.agg_savings_by_lever_daily"
CACHE_OUTCOMES_TABLE = f"{SCHEMA}.agg_cache_outcomes_daily"
CACHE_SIMILARITY_TABLE = f"{SCHEMA}.agg_cache_similarity_daily"
ROUTING_TIERS_TABLE = f"{SCHEMA}.agg_routing_tiers_daily"
COMPRESSION_TABLE = f"{SCHEMA}.agg_compression_daily"

LEVERS: tuple[str, ...] = ("cache", "routing", "compression")
"""The savings levers, in the order the page shows them (any other lever in the data follows them)."""
VERIFICATION_STATUSES: tuple[str, ...] = ("verified", "unverified", "blocked")
CACHE_STATUSES: tuple[str, ...] = ("hit_exact", "hit_semantic", "shadow_hit", "miss", "bypass")
SIMILARITY_BIN = 0.01
"""Width of a ``cache_similarity`` histogram bin (the bins ``agg_cache_similarity_daily`` is built with)."""


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
    where, params = day_where(f)
    sql = f"""
        with levers as {levers},
        claims as (
            select
                lever,
                sum(savings_usd) filter (where verification_status = 'verified')      as verified_usd,
                sum(savings_usd) filter (where verification_status = 'unverified')    as unverified_usd,
                sum(savings_usd) filter (where verification_status = 'blocked')       as blocked_usd,
                sum(claims)                                                             as requests,
                sum(claims) filter (where verification_status = 'verified')           as verified_requests,
                sum(claims) filter (where verification_status = 'unverified')         as unverified_requests,
                sum(claims) filter (where verification_status = 'blocked')            as blocked_requests,
                sum(tokens_saved)                                                       as tokens_saved
            from {SAVINGS_BY_LEVER_TABLE}
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
    where, params = day_where(f)
    sql = f"""
        select
            verification_status,
            lever,
            unbilled_reason as reason,
            sum(claims)::bigint as requests,
            coalesce(sum(savings_usd), 0)::double as savings_usd
        from {SAVINGS_BY_LEVER_TABLE}
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
    where, params = day_where(f)
    sql = f"""
        with statuses as {statuses},
        calls as (
            select
                cache_status,
                sum(requests) as requests,
                sum(savings_usd) as savings_usd,
                sum(baseline_cost_usd) as baseline_cost_usd,
                sum(unpriced_requests) as unpriced_requests
            from {CACHE_OUTCOMES_TABLE}
            where {where}
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
    where, params = day_where(f)
    sql = f"""
        select cache_status, bin_start, sum(requests)::bigint as requests
        from {CACHE_SIMILARITY_TABLE}
        where {where}
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
    where, params = day_where(f)
    sql = f"""
        with tiers as (
            select
                policy_version,
                tier,
                min(first_decided_at) as first_seen,
                sum(requests)::bigint as requests,
                coalesce(sum(savings_usd), 0)::double as savings_usd,
                coalesce(sum(verified_savings_usd), 0)::double as verified_savings_usd
            from {ROUTING_TIERS_TABLE}
            where {where}
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
    where, params = day_where(f)
    sql = f"""
        select
            coalesce(sum(requests), 0)::bigint as requests,
            coalesce(sum(requests) filter (where compression_outcome = 'compressed'), 0)::bigint as compressed,
            coalesce(sum(requests) filter (where compression_outcome = 'unchanged'), 0)::bigint as unchanged,
            coalesce(sum(requests) filter (where compression_outcome = 'fallback'), 0)::bigint as fallbacks,
            coalesce(sum(tokens_saved), 0)::bigint as tokens_saved,
            coalesce(sum(savings_usd), 0)::double as savings_usd
        from {COMPRESSION_TABLE}
        where {where}
    """
    (df,) = read(path, [(sql, params)])
    return df


def compression_fallbacks(path: Path, f: Filters, top_n: int = 5) -> pl.DataFrame:
    """Why the compression guard sent the original prompt, most frequent first: ``reason``, ``requests``.

    Reasons are grouped by kind (``number lost``, ``final question lost``, ``quality < 0.9``, ``error``…): the
    lost item itself is prompt content and is not shown.
    """
    where, params = day_where(f)
    sql = f"""
        select fallback_reason as reason, sum(requests)::bigint as requests
        from {COMPRESSION_TABLE}
        where {where} and compression_outcome = 'fallback'
        group by reason
        order by requests desc, reason
        limit ?
    """
    (df,) = read(path, [(sql, [*params, top_n])])
    return df
