-- One row per admin action (a file written twice keeps one copy per audit_id), time as naive UTC; the actor's
-- kind (admin API or CLI) split off its name.

with

source as (

    select * from {{ source('gateway', 'audit_log') }}

),

renamed as (

    select
        cast(audit_id as varchar) as audit_id,
        cast(schema_version as smallint) as schema_version,
        occurred_at at time zone 'UTC' as occurred_at,
        cast(actor as varchar) as actor,
        split_part(cast(actor as varchar), ':', 1) as actor_kind,
        cast(action as varchar) as action,
        cast(target_type as varchar) as target_type,
        cast(target_id as varchar) as target_id,
        cast(changes as varchar) as changes
    from source

),

deduplicated as (

    select *
    from renamed
    qualify row_number() over (partition by audit_id order by occurred_at) = 1

)

select * from deduplicated
