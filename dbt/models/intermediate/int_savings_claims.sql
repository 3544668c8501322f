-- Every savings claim at request x lever grain, each checked before anything is billed on it: the one place
-- claims are derived (fct_savings exposes them, int_billable_savings narrows them to what is billed).
-- The rules (also in int_savings_claims.yml): a claim is 'verified' only when it is priced (one price table
-- version prices both baseline and actual), usage is provider-reported and the claim re-derives from the event's
-- own tokens and unit prices; estimated usage or a claim that does not re-derive is 'unverified'; an unknown
-- price is 'blocked' with a reason. Only verified savings are billable.
-- Incremental on event_hour (the request-grain store of claims): a run replaces the hours from the watermark on
-- (macros/incremental.sql), the only hours its inputs can have changed in.
{{ config(
    materialized='incremental',
    incremental_strategy='pruned_delete_insert',
    unique_key='event_hour',
    prune_column='event_hour',
    on_schema_change='append_new_columns',
) }}

{%- set since = hour_watermark('event_hour') %}
{%- set until = hour_ceiling() if since else none %}
{%- set tolerance = "1e-9 + 1e-6 * abs(derived_savings_usd)" %}

with

spend as (

    select * from {{ ref('fct_llm_spend') }}
    {%- if since %}
    -- event_hour >= since implies ts_start >= since; the second lets DuckDB skip the older row groups
    where event_hour >= timestamp '{{ since }}' and ts_start >= timestamp '{{ since }}'
    {%- if until %}
        and event_hour < timestamp '{{ until }}'
    {%- endif %}
    {%- endif %}

),

priced as (

    select
        *,
        -- what the served model cost for the tokens reported, from the unit prices on the event
        (prompt_tokens - coalesce(cached_tokens, 0) - coalesce(cache_write_tokens, 0)) * input_cost_per_token
        + coalesce(cached_tokens, 0) * cache_read_cost_per_token
        + coalesce(cache_write_tokens, 0) * coalesce(cache_write_cost_per_token, input_cost_per_token)
        + completion_tokens * output_cost_per_token as derived_served_cost_usd
    from spend

),

cache_claims as (

    select
        *,
        'cache' as lever,
        baseline_cost_usd as lever_baseline_cost_usd,
        cost_usd as lever_actual_cost_usd,
        savings_cache_usd as claimed_savings_usd,
        total_tokens as tokens_saved,
        case when cost_usd = 0 then baseline_cost_usd end as derived_savings_usd,
        'cache: savings = baseline cost of the requested model for the tokens, actual cost 0' as verification_method
    from priced
    where is_cache_hit or savings_cache_usd is not null

),

routing_claims as (

    select
        *,
        'routing' as lever,
        baseline_cost_usd as lever_baseline_cost_usd,
        cost_usd as lever_actual_cost_usd,
        savings_routing_usd as claimed_savings_usd,
        cast(0 as bigint) as tokens_saved,
        case
            when abs(derived_served_cost_usd - cost_usd) <= 1e-9 + 1e-6 * abs(cost_usd)
                then baseline_cost_usd - derived_served_cost_usd
        end as derived_savings_usd,
        'routing: baseline - served model cost re-derived from tokens x unit prices' as verification_method
    from priced
    where savings_routing_usd is not null
        or (not is_cache_hit and served_model is distinct from requested_model and served_model is not null)

),

compression_claims as (

    select
        *,
        'compression' as lever,
        cost_usd + savings_compression_usd as lever_baseline_cost_usd,
        cost_usd as lever_actual_cost_usd,
        savings_compression_usd as claimed_savings_usd,
        compression_tokens_saved as tokens_saved,
        compression_tokens_saved * input_cost_per_token as derived_savings_usd,
        'compression: tokens_saved x input price of the served model' as verification_method
    from priced
    where compression_tokens_saved > 0 or savings_compression_usd is not null

),

claims as (

    select * from cache_claims
    union all by name
    select * from routing_claims
    union all by name
    select * from compression_claims

),

checked as (

    select
        *,
        case
            when price_status = 'unknown'
                then 'unknown_price: ' || coalesce(served_model, '?') || ' / ' || coalesce(requested_model, '?')
                || ' not priced by ' || coalesce(price_table_version, 'any price table')
            when price_status = 'no_usage' then 'no_usage: the call reported no tokens to price'
            when price_table_version is null or baseline_cost_usd is null or cost_usd is null
                then 'unknown_price: baseline or actual cost missing'
            when claimed_savings_usd is null then 'no_claim: the lever applied but no savings were recorded'
        end as blocked_reason,
        case
            when usage_source <> 'provider' then 'estimated_usage: tokens were counted by the gateway'
            when derived_savings_usd is null or abs(claimed_savings_usd - derived_savings_usd) > {{ tolerance }}
                then 'not_rederivable: claimed ' || claimed_savings_usd || ', re-derived '
                || coalesce(cast(derived_savings_usd as varchar), 'nothing')
        end as check_failure
    from claims

),

final as (

    select
        event_id || ':' || lever as savings_id,
        event_id,
        lever,
        event_hour,
        event_date,
        strftime(event_date, '%Y-%m') as billing_period,
        customer_id,
        end_user,
        feature,
        requested_model,
        served_model,
        usage_source,
        price_status,
        price_table_version,
        lever_baseline_cost_usd as baseline_cost_usd,
        lever_actual_cost_usd as actual_cost_usd,
        claimed_savings_usd as savings_usd,
        derived_savings_usd,
        tokens_saved,
        case
            when blocked_reason is not null then 'blocked'
            when check_failure is not null then 'unverified'
            else 'verified'
        end as verification_status,
        verification_method,
        blocked_reason,
        case when blocked_reason is null then check_failure end as unverified_reason,
        blocked_reason is null and check_failure is null as is_billable,
        is_simulated as x_is_simulated
    from checked

)

select * from final
