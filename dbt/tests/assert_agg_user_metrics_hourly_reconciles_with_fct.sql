-- The hourly rollup adds up to the request-grain mart: requests, tokens, cost and savings.
{{ config(meta={'dagster': {'ref': {'name': 'agg_user_metrics_hourly'}}}) }}

with

agg_total as (

    select
        sum(requests) as requests,
        sum(total_tokens) as total_tokens,
        sum(cost_usd) as cost_usd,
        sum(savings_usd) as savings_usd
    from {{ ref('agg_user_metrics_hourly') }}

),

fct_total as (

    select
        count(*) as requests,
        coalesce(sum(total_tokens), 0) as total_tokens,
        coalesce(sum(cost_usd), 0) as cost_usd,
        coalesce(sum(savings_usd), 0) as savings_usd
    from {{ ref('fct_llm_spend') }}

)

select *
from agg_total
cross join fct_total
where agg_total.requests <> fct_total.requests
    or agg_total.total_tokens <> fct_total.total_tokens
    or abs(agg_total.cost_usd - fct_total.cost_usd) > 1e-9 * greatest(1, abs(fct_total.cost_usd))
    or abs(agg_total.savings_usd - fct_total.savings_usd) > 1e-9 * greatest(1, abs(fct_total.savings_usd))
