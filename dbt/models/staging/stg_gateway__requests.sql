-- One row per gateway event, typed and renamed; times converted to naive UTC timestamps.
-- The raw files are append-only and a spill replay can write an event twice: keep one row per event_id.
-- Incremental (the one place the raw Parquet glob is scanned): a run reads only the hours from the watermark
-- on (macros/incremental.sql), pushed into the Parquet scan as a literal; a replayed copy of an event has the
-- same ts_start, so it always lands in the same hour as the original and dedup within the hours read is global.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='event_id',
    on_schema_change='append_new_columns',
) }}

{%- set since = hour_watermark('ts_start') %}

with

source as (

    select * from {{ source('gateway', 'events') }}
    {%- if since %}
    where ts_start >= timestamptz '{{ since }}+00'
    {%- endif %}

),

renamed as (

    select
        cast(event_id as varchar) as event_id,
        cast(request_id as varchar) as request_id,
        cast(gateway_id as varchar) as gateway_id,
        cast(schema_version as smallint) as schema_version,

        -- attribution
        key_id,
        customer_id,
        team_id,
        end_user,
        feature,
        tags,

        -- time (the contract stores UTC instants)
        ts_start at time zone 'UTC' as ts_start,
        ts_end at time zone 'UTC' as ts_end,

        -- what was called
        endpoint,
        requested_model,
        served_model,
        provider,
        provider_kind,
        cast(is_stream as boolean) as is_stream,
        cast(is_simulated as boolean) as is_simulated,

        -- outcome
        cast(http_status as integer) as http_status,
        error_type,
        finish_reason,

        -- tokens
        cast(prompt_tokens as bigint) as prompt_tokens,
        cast(completion_tokens as bigint) as completion_tokens,
        cast(cached_tokens as bigint) as cached_tokens,
        -- v2: prompt-cache writes (v1 events never recorded any, so null reads as 0)
        coalesce(cast(cache_write_tokens as bigint), 0) as cache_write_tokens,
        cast(total_tokens as bigint) as total_tokens,
        usage_source,

        -- money (USD)
        cast(cost_usd as double) as cost_usd,
        cast(baseline_cost_usd as double) as baseline_cost_usd,
        price_status,
        price_table_version,
        cast(input_cost_per_token as double) as input_cost_per_token,
        cast(output_cost_per_token as double) as output_cost_per_token,
        cast(cache_read_cost_per_token as double) as cache_read_cost_per_token,
        cast(cache_write_cost_per_token as double) as cache_write_cost_per_token,

        -- latency (ms)
        cast(latency_ms as double) as latency_ms,
        cast(ttft_ms as double) as ttft_ms,
        cast(upstream_latency_ms as double) as upstream_latency_ms,
        cast(gateway_overhead_ms as double) as gateway_overhead_ms,

        -- optimizations
        cache_status,
        cast(cache_similarity as double) as cache_similarity,
        cast(compression_tokens_saved as bigint) as compression_tokens_saved,
        routing_decision,
        policy_version,
        cast(savings_cache_usd as double) as savings_cache_usd,
        cast(savings_routing_usd as double) as savings_routing_usd,
        cast(savings_compression_usd as double) as savings_compression_usd,
        -- event contract v2 (v1 files read these as null)
        cache_match_id,
        compression_status,
        baseline_model,

        prompt_hash

    from source

),

deduplicated as (

    select *
    from renamed
    qualify row_number() over (partition by event_id order by ts_end desc, gateway_id) = 1

)

select * from deduplicated
