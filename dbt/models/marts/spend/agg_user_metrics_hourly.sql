-- Usage, spend and cache effectiveness per hour, customer and end user (anonymous calls grouped together).
-- savings_usd is every claim (= fct_savings' claims per hour/user); verified_savings_usd the billable part.
-- Incremental on the hour like the request-grain models: a run replaces the hours from the watermark on
-- (macros/incremental.sql), the only hours its inputs can have changed in.
{{ config(
    materialized='incremental',
    incremental_strategy='pruned_delete_insert',
    unique_key='hour',
    prune_column='hour',
    on_schema_change='append_new_columns',
) }}

{%- set since = hour_watermark('hour') %}
{%- set until = hour_ceiling() if since else none %}

with

spend as (

    select * from {{ ref('fct_llm_spend') }}
    {%- if since %}
    -- ts_start, not event_hour: the filter reaches the staging table's zone maps
    where ts_start >= timestamp '{{ since }}'
    {%- endif %}
    {%- if until %}
        and ts_start < timestamp '{{ until }}'
    {%- endif %}

),

verified_savings as (

    select
        event_hour as hour,
        customer_id,
        coalesce(end_user, '(anonymous)') as end_user,
        sum(savings_usd) as verified_savings_usd
    from {{ ref('fct_savings') }}
    where is_billable
    {%- if since %}
        and event_hour >= timestamp '{{ since }}'
    {%- endif %}
    {%- if until %}
        and event_hour < timestamp '{{ until }}'
    {%- endif %}
    group by 1, 2, 3

),

aggregated as (

    select
        event_hour as hour,
        customer_id,
        coalesce(end_user, '(anonymous)') as end_user,
        count(*) as requests,
        count(*) filter (where is_error) as error_requests,
        cast(coalesce(sum(prompt_tokens), 0) as bigint) as prompt_tokens,
        cast(coalesce(sum(completion_tokens), 0) as bigint) as completion_tokens,
        cast(coalesce(sum(total_tokens), 0) as bigint) as total_tokens,
        -- sums of known spend; unpriced_requests says how much is missing
        coalesce(sum(cost_usd), 0) as cost_usd,
        coalesce(sum(baseline_cost_usd), 0) as baseline_cost_usd,
        sum(savings_usd) as savings_usd,
        count(*) filter (where is_cache_hit) as cache_hits,
        count(*) filter (where price_status = 'unknown') as unpriced_requests,
        count(*) filter (where is_simulated) as simulated_requests

    from spend
    group by 1, 2, 3

),

final as (

    select
        hour,
        customer_id,
        end_user,
        requests,
        error_requests,
        prompt_tokens,
        completion_tokens,
        total_tokens,
        cost_usd,
        baseline_cost_usd,
        savings_usd,
        coalesce(verified_savings.verified_savings_usd, 0) as verified_savings_usd,
        cache_hits,
        cache_hits / requests as cache_hit_rate,
        unpriced_requests,
        simulated_requests

    from aggregated
    left join verified_savings using (hour, customer_id, end_user)

)

select * from final
