-- Learned routing (model apex/auto) per customer and UTC day: calls sent to the weak or the strong model per
-- policy version, with the routing savings claimed and the verified (billable) part: the dashboard's routing
-- section. Only calls whose routing_decision is learned routing's ('auto: weak (...)' / 'auto: strong (...)');
-- a dispatcher fallback is not.

with

spend as (

    select * from {{ ref('fct_llm_spend') }}

),

verified as (

    select
        event_id,
        savings_usd
    from {{ ref('fct_savings') }}
    where lever = 'routing' and verification_status = 'verified'

),

routed as (

    select
        event_id,
        event_date,
        customer_id,
        ts_start,
        coalesce(policy_version, '(no policy loaded)') as policy_version,
        case when routing_decision like 'auto: weak%' then 'weak' else 'strong' end as tier,
        savings_routing_usd
    from spend
    where routing_decision like 'auto: weak%' or routing_decision like 'auto: strong%'

),

final as (

    select
        routed.event_date as day,
        routed.customer_id,
        routed.policy_version,
        routed.tier,
        min(routed.ts_start) as first_decided_at,
        count(*) as requests,
        coalesce(sum(routed.savings_routing_usd), 0) as savings_usd,
        coalesce(sum(verified.savings_usd), 0) as verified_savings_usd
    from routed
    left join verified on routed.event_id = verified.event_id
    group by 1, 2, 3, 4

)

select * from final
