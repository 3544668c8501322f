-- Usage, spend and savings per customer and UTC day: what the customer-facing value report reads.

with

spend as (

    select
        customer_id,
        event_date,
        count(*) as requests,
        cast(coalesce(sum(total_tokens), 0) as bigint) as total_tokens,
        coalesce(sum(cost_usd), 0) as cost_usd,
        coalesce(sum(baseline_cost_usd), 0) as baseline_cost_usd,
        count(*) filter (where price_status = 'unknown') as unpriced_requests,
        count(*) filter (where is_simulated) as simulated_requests
    from {{ ref('fct_llm_spend') }}
    group by 1, 2

),

savings as (

    select
        customer_id,
        event_date,
        coalesce(sum(savings_usd) filter (where lever = 'cache'), 0) as savings_cache_usd,
        coalesce(sum(savings_usd) filter (where lever = 'routing'), 0) as savings_routing_usd,
        coalesce(sum(savings_usd) filter (where lever = 'compression'), 0) as savings_compression_usd,
        coalesce(sum(savings_usd) filter (where lever = 'infrastructure'), 0) as savings_infrastructure_usd,
        coalesce(sum(savings_usd), 0) as savings_usd,
        coalesce(sum(savings_usd) filter (where is_billable), 0) as verified_savings_usd,
        coalesce(sum(savings_usd) filter (where verification_status = 'unverified'), 0) as unverified_savings_usd,
        count(*) filter (where verification_status = 'blocked') as blocked_claims
    from {{ ref('fct_savings') }}
    group by 1, 2

),

final as (

    select
        spend.customer_id,
        spend.event_date as day,
        spend.requests,
        spend.total_tokens,
        spend.cost_usd,
        spend.baseline_cost_usd,
        coalesce(savings.savings_cache_usd, 0) as savings_cache_usd,
        coalesce(savings.savings_routing_usd, 0) as savings_routing_usd,
        coalesce(savings.savings_compression_usd, 0) as savings_compression_usd,
        coalesce(savings.savings_infrastructure_usd, 0) as savings_infrastructure_usd,
        coalesce(savings.savings_usd, 0) as savings_usd,
        coalesce(savings.verified_savings_usd, 0) as verified_savings_usd,
        coalesce(savings.unverified_savings_usd, 0) as unverified_savings_usd,
        coalesce(savings.blocked_claims, 0) as blocked_claims,
        spend.unpriced_requests,
        spend.simulated_requests
    from spend
    left join savings
        on spend.customer_id is not distinct from savings.customer_id
        and spend.event_date = savings.event_date

)

select * from final
