-- One row per admin action, newest last: who changed what, when, and which fields (the JSON object's keys,
-- sorted) — the operator's answer to "who gave this key that budget".

with

audit as (

    select * from {{ ref('stg_gateway__audit_log') }}

),

final as (

    select
        audit_id,
        occurred_at,
        cast(occurred_at as date) as occurred_date,
        actor,
        actor_kind,
        action,
        target_type,
        target_id,
        array_to_string(list_sort(json_keys(changes)), ',') as changed_fields,
        changes
    from audit

)

select * from final
order by occurred_at, audit_id
