-- VBP: one line per customer x billing period (UTC month) x lever, billing fee_rate of the verified savings.
-- A lever whose verified savings net to <= 0 in a period bills nothing and says why.

with

verified as (

    select * from {{ ref('int_billable_savings') }}

),

contracts as (

    select * from {{ ref('customer_contracts') }}

),

per_lever as (

    select
        customer_id,
        billing_period,
        lever,
        sum(savings_usd) as verified_savings_usd,
        count(*) as event_count,
        count(*) filter (where x_is_simulated) as simulated_event_count,
        sha256(string_agg(event_id, ',' order by event_id)) as proof_hash
    from verified
    group by 1, 2, 3

),

final as (

    select
        {{ hash_id(["'vbp'", 'per_lever.customer_id', 'billing_period', 'lever']) }} as line_id,
        {{ hash_id(["'inv'", 'per_lever.customer_id', 'billing_period']) }} as invoice_id,
        per_lever.customer_id,
        billing_period,
        lever,
        verified_savings_usd,
        coalesce(contracts.fee_rate, {{ var('vbp_default_fee_rate') }}) as fee_rate,
        case
            when verified_savings_usd > 0
                then {{ usd_to_cents('verified_savings_usd * coalesce(contracts.fee_rate, ' ~ var('vbp_default_fee_rate') ~ ')') }}
            else cast(0 as bigint)
        end as amount_cents,
        coalesce(contracts.currency, 'usd') as currency,
        case when verified_savings_usd > 0 then 'billable' else 'zero_negative_savings' end as status,
        case
            when verified_savings_usd <= 0
                then 'verified ' || lever || ' savings net to ' || printf('%.6f', verified_savings_usd)
                || ' USD in ' || billing_period || ': Apex did not save money on this lever, so it bills 0'
        end as status_reason,
        event_count,
        simulated_event_count,
        proof_hash
    from per_lever
    left join contracts on per_lever.customer_id = contracts.customer_id

)

select * from final
