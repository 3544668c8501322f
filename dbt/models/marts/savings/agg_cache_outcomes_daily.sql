-- Calls per cache outcome, customer and UTC day: the dashboard's semantic-cache section (Optimizers tab).
-- Calls without a cache_status did not opt into a cache and are left out.

with

spend as (

    select * from {{ ref('fct_llm_spend') }}

),

final as (

    select
        event_date as day,
        customer_id,
        cache_status,
        count(*) as requests,
        coalesce(sum(savings_cache_usd), 0) as savings_usd,
        coalesce(sum(baseline_cost_usd), 0) as baseline_cost_usd,
        count(*) filter (where baseline_cost_usd is null) as unpriced_requests
    from spend
    where cache_status is not null
    group by 1, 2, 3

)

select * from final
