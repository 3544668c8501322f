-- One row per validation run (latest copy of a run_id wins), times as naive UTC, duration in whole seconds
-- rounded up: BVM prorates compute to the second.

with

source as (

    select * from {{ source('sandbox', 'validation_runs') }}

),

renamed as (

    select
        cast(run_id as varchar) as run_id,
        cast(schema_version as smallint) as schema_version,
        cast(customer_id as varchar) as customer_id,
        started_at at time zone 'UTC' as started_at,
        ended_at at time zone 'UTC' as ended_at,
        cast(ceil(greatest(epoch_ms(ended_at) - epoch_ms(started_at), 0) / 1000.0) as bigint) as duration_seconds,
        cast(cpu_cores as integer) as cpu_cores,
        cast(gpus as integer) as gpus,
        cast(instance_type as varchar) as instance_type,
        cast(validated as varchar) as validated,
        cast(outcome as varchar) as outcome
    from source

),

deduplicated as (

    select *
    from renamed
    qualify row_number() over (partition by run_id order by ended_at desc) = 1

)

select * from deduplicated
