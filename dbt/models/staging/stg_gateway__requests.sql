-- One row per gateway event, typed and renamed; times converted to naive UTC timestamps.
-- The raw files are append-only and a spill replay can write an event twice: keep one row per event_id (the
-- copy with the latest ts_end, then the smallest gateway_id; between equal copies the one already held).
-- Incremental (the one place the raw Parquet glob is scanned): a run reads only the files of the hour folders
-- from the watermark on (macros/incremental.sql: hour_watermark) that it does not hold yet (_source_file,
-- event_files_since), filtered on ts_start. A replayed copy of an event has the same ts_start, so it always
-- lands in the same hour as the original: the new copies are checked against the rows held from the watermark
-- on, and dedup stays global. For the same reason the delete of replaced events only looks at rows from the
-- batch's first ts_start on (the pruned_delete_insert strategy), which lets DuckDB skip the older row groups.
-- Rows keep the order of the files (hour folders sort by time), so a run's delete and insert touch the table's
-- newest row groups only. A change to this model's logic needs --full-refresh (already-read files are not
-- read again).
{{ config(
    materialized='incremental',
    incremental_strategy='pruned_delete_insert',
    unique_key='event_id',
    prune_column='ts_start',
    on_schema_change='append_new_columns',
) }}

{%- set since = hour_watermark('ts_start') %}
{%- set until = hour_ceiling() if since else none %}
{%- set held = none %}
{%- if since %}
    {#- a table built before _source_file existed gets it appended (null) and re-reads its hours once -#}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list %}
    {%- if '_source_file' in columns %}
        {%- set held = "select _source_file as file, event_id, ts_end, gateway_id from " ~ this
            ~ " where ts_start >= timestamp '" ~ since ~ "'"
            ~ (" and ts_start < timestamp '" ~ until ~ "'" if until else "") %}
    {%- endif %}
{%- endif %}

with

-- not materialized: read twice (a few columns for the dedup, all of them for the rows), never buffered whole
source as not materialized (

    select *, filename as _source_file, file_row_number as _source_row
    from {{ event_files_since(source('gateway', 'events'), since, held, until) }}
    {%- if since %}
    where ts_start >= timestamptz '{{ since }}+00'
    {%- endif %}
    {%- if until %}
        and ts_start < timestamptz '{{ until }}+00'
    {%- endif %}

),

-- Dedup without a window over every column: find the event_ids that occur more than once (usually none) from
-- the few columns the rule needs, name the losing copies by file and row, and drop them in an anti-join that
-- keeps the rows in file order.
candidates as (

    select
        cast(event_id as varchar) as event_id,
        make_timestamp(epoch_us(ts_end)) as ts_end,
        cast(gateway_id as varchar) as gateway_id,
        _source_file,
        _source_row,
        false as is_held
    from source
    {%- if held %}

    union all

    -- the rows already held from the watermark on: a new copy of one of their events must beat it to replace it
    select event_id, ts_end, gateway_id, null, null, true
    from ({{ held }})
    {%- endif %}

),

-- grouped on a 64-bit hash of event_id (smaller and faster than the text): a collision only adds candidates,
-- which the row_number below, partitioned on event_id itself, keeps
replayed as (

    select hash(event_id) as event_hash
    from candidates
    group by 1
    having count(*) > 1

),

losing_copies as (

    select candidates._source_file, candidates._source_row
    from candidates
    semi join replayed on hash(candidates.event_id) = replayed.event_hash
    qualify row_number() over (
        partition by candidates.event_id
        order by candidates.ts_end desc, candidates.gateway_id, candidates.is_held desc
    ) > 1

),

deduplicated as (

    select *
    from source
    anti join losing_copies using (_source_file, _source_row)

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

        -- time (the contract stores UTC instants): the naive UTC timestamp of the same microsecond, computed
        -- from the epoch (= ts at time zone 'UTC', without a time zone lookup per value: ~20x cheaper)
        make_timestamp(epoch_us(ts_start)) as ts_start,
        make_timestamp(epoch_us(ts_end)) as ts_end,

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

        prompt_hash,

        -- lineage: the file the row was read from (what an incremental run skips)
        _source_file

    from deduplicated

)

select * from renamed
