-- LLM spend at request grain: one row per gateway event, with the money and savings the invoices rest on.

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
        coalesce(cache_status like 'hit%', false) as is_cache_hit

    from requests

)

select * from final
