-- The mart neither loses nor invents spend: its total cost equals the source's, counting each event once.
{{ config(meta={'dagster': {'ref': {'name': 'fct_llm_spend'}}}) }}

with

source_events as (

    select distinct on (event_id)
        event_id,
        cost_usd
    from {{ source('gateway', 'events') }}

),

source_total as (

    select
        count(*) as requests,
        coalesce(sum(cost_usd), 0) as cost_usd,
        count(cost_usd) as priced_rows
    from source_events

),

mart_total as (

    select
        count(*) as requests,
        coalesce(sum(cost_usd), 0) as cost_usd,
        count(cost_usd) as priced_rows
    from {{ ref('fct_llm_spend') }}

)

select
    source_total.requests as source_requests,
    mart_total.requests as mart_requests,
    source_total.cost_usd as source_cost_usd,
    mart_total.cost_usd as mart_cost_usd
from source_total
cross join mart_total
where source_total.requests <> mart_total.requests
    or source_total.priced_rows <> mart_total.priced_rows
    or abs(source_total.cost_usd - mart_total.cost_usd) > 1e-9 * greatest(1, abs(source_total.cost_usd))
