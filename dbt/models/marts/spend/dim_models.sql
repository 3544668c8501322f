-- One row per model name seen in gateway traffic, requested or served, with who served it last and the unit
-- prices of its latest priced call.

with

requests as (

    select * from {{ ref('stg_gateway__requests') }}

),

mentions as (

    select
        requested_model as model,
        ts_start,
        false as is_served,
        cast(null as varchar) as provider,
        cast(null as varchar) as provider_kind,
        cast(null as varchar) as price_status,
        cast(null as varchar) as price_table_version,
        cast(null as double) as input_cost_per_token,
        cast(null as double) as output_cost_per_token
    from requests
    where requested_model is not null

    union all

    select
        served_model as model,
        ts_start,
        true as is_served,
        provider,
        provider_kind,
        price_status,
        price_table_version,
        input_cost_per_token,
        output_cost_per_token
    from requests
    where served_model is not null

),

final as (

    select
        model,
        count(*) filter (where not is_served) as times_requested,
        count(*) filter (where is_served) as times_served,
        min(ts_start) as first_seen_at,
        max(ts_start) as last_seen_at,
        arg_max(provider, ts_start) filter (where is_served) as last_provider,
        arg_max(provider_kind, ts_start) filter (where is_served) as last_provider_kind,
        arg_max(price_table_version, ts_start) filter (where price_status = 'priced') as price_table_version,
        arg_max(input_cost_per_token, ts_start) filter (where price_status = 'priced') as input_cost_per_token,
        arg_max(output_cost_per_token, ts_start) filter (where price_status = 'priced') as output_cost_per_token
    from mentions
    group by model

)

select * from final
