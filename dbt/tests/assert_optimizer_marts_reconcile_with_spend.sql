-- The Optimizers tab's daily marts neither lose nor invent calls or savings: their totals equal the
-- request-grain marts they roll up (cache lookups, learned-routing calls, compression opt-ins, lever claims).
{{ config(meta={'dagster': {'ref': {'name': 'agg_cache_outcomes_daily'}}}) }}

with

spend as (

    select * from {{ ref('fct_llm_spend') }}

),

expected as (

    select 'cache' as mart, count(*) as requests, coalesce(sum(savings_cache_usd), 0) as savings_usd
    from spend where cache_status is not null
    union all
    select 'routing', count(*), coalesce(sum(savings_routing_usd), 0)
    from spend where routing_decision like 'auto: weak%' or routing_decision like 'auto: strong%'
    union all
    select 'compression', count(*), coalesce(sum(savings_compression_usd), 0)
    from spend where compression_status is not null
    union all
    select 'savings', count(*), coalesce(sum(savings_usd), 0)
    from {{ ref('fct_savings') }}

),

rolled_up as (

    select 'cache' as mart, sum(requests) as requests, sum(savings_usd) as savings_usd
    from {{ ref('agg_cache_outcomes_daily') }}
    union all
    select 'routing', sum(requests), sum(savings_usd) from {{ ref('agg_routing_tiers_daily') }}
    union all
    select 'compression', sum(requests), sum(savings_usd) from {{ ref('agg_compression_daily') }}
    union all
    select 'savings', sum(claims), sum(savings_usd) from {{ ref('agg_savings_by_lever_daily') }}

)

select expected.*, rolled_up.requests as rolled_up_requests, rolled_up.savings_usd as rolled_up_savings_usd
from expected
left join rolled_up on expected.mart = rolled_up.mart
where coalesce(rolled_up.requests, 0) <> expected.requests
    or abs(coalesce(rolled_up.savings_usd, 0) - expected.savings_usd) > 1e-9 * greatest(1, abs(expected.savings_usd))
