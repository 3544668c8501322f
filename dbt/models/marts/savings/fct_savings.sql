-- Savings at request x lever grain with their verification status: the mart readers (dashboard, value report,
-- rollups) query. A view over int_savings_claims, which derives, checks and stores every claim incrementally;
-- storing the same rows twice would rewrite the request x lever grain on every build.
{{ config(materialized='view') }}

with

claims as (

    select * from {{ ref('int_savings_claims') }}

),

final as (

    select
        savings_id,
        event_id,
        lever,
        event_hour,
        event_date,
        billing_period,
        customer_id,
        end_user,
        feature,
        requested_model,
        served_model,
        usage_source,
        price_status,
        price_table_version,
        baseline_cost_usd,
        actual_cost_usd,
        savings_usd,
        derived_savings_usd,
        tokens_saved,
        verification_status,
        verification_method,
        blocked_reason,
        unverified_reason,
        is_billable,
        x_is_simulated
    from claims

)

select * from final
