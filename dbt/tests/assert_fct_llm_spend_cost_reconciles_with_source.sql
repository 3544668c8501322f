-- The mart neither loses nor invents spend: its total cost equals the source's, counting each event once.
-- A run bounded by apex_reprocess_from/_to (a Dagster day partition) checks its own window: other days are
-- loaded, and checked, by their own runs.
{{ config(meta={'dagster': {'ref': {'name': 'fct_llm_spend'}}}) }}
{%- set window_from = var('apex_reprocess_from', none) %}
{%- set window_to = var('apex_reprocess_to', none) %}

with

source_events as (

    select distinct on (event_id)
        event_id,
        cost_usd
    from {{ source('gateway', 'events') }}
    where true
    {%- if window_from %}
        and ts_start >= timestamptz '{{ window_from }}+00'
    {%- endif %}
    {%- if window_to %}
        and ts_start < timestamptz '{{ window_to }}+00'
    {%- endif %}

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
    where true
    {%- if window_from %}
        and ts_start >= timestamp '{{ window_from }}'
    {%- endif %}
    {%- if window_to %}
        and ts_start < timestamp '{{ window_to }}'
    {%- endif %}

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
