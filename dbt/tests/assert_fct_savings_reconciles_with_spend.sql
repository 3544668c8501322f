-- Savings claims neither lost nor invented: per hour x customer x end user, fct_savings' claims equal the
-- savings of fct_llm_spend and of agg_user_metrics_hourly, and verified savings match the rollup's.
{{ config(meta={'dagster': {'ref': {'name': 'fct_savings'}}}) }}

with

claims as (

    select
        event_hour as hour,
        customer_id,
        coalesce(end_user, '(anonymous)') as end_user,
        coalesce(sum(savings_usd), 0) as savings_usd,
        coalesce(sum(savings_usd) filter (where is_billable), 0) as verified_savings_usd
    from {{ ref('fct_savings') }}
    group by 1, 2, 3

),

hourly as (

    select hour, customer_id, end_user, savings_usd, verified_savings_usd
    from {{ ref('agg_user_metrics_hourly') }}

)

select hourly.*, claims.savings_usd as claimed, claims.verified_savings_usd as verified_claimed
from hourly
left join claims
    on hourly.hour = claims.hour
    and hourly.customer_id is not distinct from claims.customer_id
    and hourly.end_user = claims.end_user
where abs(hourly.savings_usd - coalesce(claims.savings_usd, 0)) > 1e-9 * greatest(1, abs(hourly.savings_usd))
    or (hourly.customer_id is not null
        and abs(hourly.verified_savings_usd - coalesce(claims.verified_savings_usd, 0))
        > 1e-9 * greatest(1, abs(hourly.verified_savings_usd)))
