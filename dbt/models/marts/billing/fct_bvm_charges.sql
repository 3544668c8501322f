-- BVM: one charge per validation run = instance list price x run time (prorated to the second) + markup.
-- An instance type without a price is blocked with a reason, never charged 0.

with

runs as (

    select * from {{ ref('stg_sandbox__validation_runs') }}

),

prices as (

    select * from {{ ref('cloud_instance_prices') }}

),

costed as (

    select
        runs.*,
        prices.hourly_usd,
        prices.instance_type is not null as is_priced,
        runs.duration_seconds * prices.hourly_usd / 3600.0 as base_cost_usd
    from runs
    left join prices on runs.instance_type = prices.instance_type

),

final as (

    select
        {{ hash_id(["'bvm'", 'run_id']) }} as charge_id,
        run_id,
        customer_id,
        strftime(started_at, '%Y-%m') as billing_period,
        started_at,
        ended_at,
        duration_seconds,
        instance_type,
        cpu_cores,
        gpus,
        cpu_cores * duration_seconds / 3600.0 as cpu_hours,
        gpus * duration_seconds / 3600.0 as gpu_hours,
        validated,
        outcome,
        hourly_usd,
        base_cost_usd,
        cast({{ var('bvm_markup_rate') }} as double) as markup_rate,
        base_cost_usd * (1 + {{ var('bvm_markup_rate') }}) as charge_usd,
        case
            when is_priced then {{ usd_to_cents('base_cost_usd * (1 + ' ~ var('bvm_markup_rate') ~ ')') }}
            else cast(0 as bigint)
        end as charge_cents,
        case when is_priced then 'billable' else 'blocked_unknown_price' end as status,
        case
            when not is_priced
                then 'instance type ' || coalesce(instance_type, '(none)') || ' has no price in cloud_instance_prices'
        end as status_reason
    from costed

)

select * from final
