-- LLM spend at request grain: one row per gateway event, with the money and savings the invoices rest on,
-- plus FinOps FOCUS 1.2-aligned columns (PascalCase) and x_-prefixed custom columns for FOCUS consumers.
-- A view over stg_gateway__requests (which is incremental and holds one row per event): every column here is
-- a rename, a constant or a cheap expression of one row, so storing them again (76 columns, 40 of them text)
-- cost more than the staging table itself on every build; readers compute only the columns they select, and a
-- filter on ts_start reaches the staging table's zone maps (filter on ts_start, not event_hour, to skip hours).
{{ config(materialized='view') }}

with

requests as (

    select * from {{ ref('stg_gateway__requests') }}

),

final as (

    select
        event_id,
        request_id,
        ts_start,
        ts_end,
        cast(ts_start as date) as event_date,
        date_trunc('hour', ts_start) as event_hour,

        customer_id,
        team_id,
        key_id,
        end_user,
        feature,

        endpoint,
        requested_model,
        served_model,
        provider,
        provider_kind,
        is_stream,
        is_simulated,

        http_status,
        http_status >= 400 as is_error,
        error_type,

        prompt_tokens,
        completion_tokens,
        cached_tokens,
        cache_write_tokens,
        total_tokens,
        usage_source,

        -- null cost stays null: an unpriced call is unknown spend, never free spend
        cost_usd,
        baseline_cost_usd,
        coalesce(savings_cache_usd, 0)
        + coalesce(savings_routing_usd, 0)
        + coalesce(savings_compression_usd, 0) as savings_usd,
        price_status,
        price_table_version,

        latency_ms,
        ttft_ms,
        gateway_overhead_ms,

        cache_status,
        coalesce(cache_status like 'hit%', false) as is_cache_hit,
        cache_similarity,
        cache_match_id,
        compression_status,
        baseline_model,

        -- what fct_savings re-derives each lever's claim from
        input_cost_per_token,
        output_cost_per_token,
        cache_read_cost_per_token,
        cache_write_cost_per_token,
        compression_tokens_saved,
        routing_decision,
        policy_version,
        savings_cache_usd,
        savings_routing_usd,
        savings_compression_usd,

        -- FOCUS 1.2: list prices, no negotiated discounts, so billed = effective = list cost
        cost_usd as BilledCost,
        cost_usd as EffectiveCost,
        cost_usd as ListCost,
        'USD' as BillingCurrency,
        'Usage' as ChargeCategory,
        date_trunc('hour', ts_start) as ChargePeriodStart,
        date_trunc('hour', ts_start) + interval 1 hour as ChargePeriodEnd,
        provider as ProviderName,
        case provider_kind
            when 'openai' then 'OpenAI API'
            when 'anthropic' then 'Anthropic API'
            when 'azure_openai' then 'Azure OpenAI Service'
            when 'gemini' then 'Gemini API'
            when 'vertex' then 'Vertex AI'
            when 'simulated' then 'Apex simulated provider'
            else coalesce(provider, 'unknown') || ' API'
        end as ServiceName,
        'AI and Machine Learning' as ServiceCategory,
        key_id as ResourceId,
        served_model as SkuId,
        total_tokens as ConsumedQuantity,
        'Tokens' as ConsumedUnit,

        customer_id as x_customer_id,
        team_id as x_team_id,
        end_user as x_end_user,
        feature as x_feature,
        requested_model as x_requested_model,
        price_status as x_price_status,
        price_table_version as x_price_table_version,
        usage_source as x_usage_source,
        cache_status as x_cache_status,
        is_simulated as x_is_simulated,
        event_id as x_event_id

    from requests

)

select * from final
