-- Savings claims per customer, UTC day, lever and verification status, with the kind of reason a claim was not
-- billed: the dashboard's savings-by-lever section and its "why not billed" table.

with

claims as (

    select * from {{ ref('fct_savings') }}

),

final as (

    select
        event_date as day,
        customer_id,
        lever,
        verification_status,
        -- the reason's kind (e.g. unknown_price, estimated_usage) without the per-call details
        case
            when verification_status <> 'verified'
                then split_part(coalesce(blocked_reason, unverified_reason, '(no reason given)'), ':', 1)
        end as unbilled_reason,
        count(*) as claims,
        sum(savings_usd) as savings_usd,
        cast(sum(tokens_saved) as bigint) as tokens_saved
    from claims
    group by 1, 2, 3, 4, 5

)

select * from final
